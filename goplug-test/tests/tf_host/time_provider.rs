//! HashiCorp's terraform-provider-time v0.14.2 over protocol 5:
//! `time_static`, with a given timestamp (every field known at plan) and
//! with none (the provider's clock, known only after apply).

use goplug::host::Channel;
use goplug_terraform::tfplugin5 as tf;
use tf::provider_client::ProviderClient;

use goplug_terraform::client;
use goplug_terraform::cty::Value;

use crate::values::{self, Shape};

fn dynamic(shape: &Shape, value: &Value) -> Option<tf::DynamicValue> {
    Some(tf::DynamicValue {
        msgpack: shape.msgpack(value),
        json: Vec::new(),
    })
}

fn decoded(shape: &Shape, value: Option<tf::DynamicValue>) -> Value {
    let value = value.expect("a value in the response");
    assert!(value.json.is_empty(), "the provider answered in JSON");
    shape.decode(&value.msgpack)
}

fn no_diagnostics(call: &str, diagnostics: &[tf::Diagnostic]) {
    assert!(diagnostics.is_empty(), "{call}: {diagnostics:#?}");
}

/// The calendar fields of `time_static` for an RFC 3339 UTC timestamp,
/// checked by reading the string itself: `YYYY-MM-DDTHH:MM:SSZ`.
fn assert_fields_match(state: &Value) {
    let rfc3339 = values::text(state, "rfc3339").expect("rfc3339 is known");
    let bytes = rfc3339.as_bytes();
    assert!(
        rfc3339.len() == 20 && bytes[4] == b'-' && bytes[10] == b'T' && bytes[19] == b'Z',
        "{rfc3339} is not an RFC 3339 UTC timestamp"
    );
    let field = |range: std::ops::Range<usize>| -> i64 {
        rfc3339[range]
            .parse()
            .unwrap_or_else(|e| panic!("{rfc3339}: {e}"))
    };
    let (year, month, day) = (field(0..4), field(5..7), field(8..10));
    let (hour, minute, second) = (field(11..13), field(14..16), field(17..19));
    assert_eq!(values::int(state, "year"), Some(year), "{rfc3339}");
    assert_eq!(values::int(state, "month"), Some(month), "{rfc3339}");
    assert_eq!(values::int(state, "day"), Some(day), "{rfc3339}");
    assert_eq!(values::int(state, "hour"), Some(hour), "{rfc3339}");
    assert_eq!(values::int(state, "minute"), Some(minute), "{rfc3339}");
    assert_eq!(values::int(state, "second"), Some(second), "{rfc3339}");
    let unix = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    assert_eq!(values::int(state, "unix"), Some(unix), "{rfc3339}");
    assert_eq!(values::text(state, "id"), Some(rfc3339));
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[test]
fn days_from_civil_counts_from_the_unix_epoch() {
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    assert_eq!(days_from_civil(1969, 12, 31), -1);
}

/// Plans and applies `config` from nothing; returns the plan and the state.
async fn create(
    provider: &mut ProviderClient<Channel>,
    shape: &Shape,
    config: &Value,
) -> (Value, Value, Vec<u8>) {
    let null = Value::Null;
    let planned = provider
        .plan_resource_change(tf::plan_resource_change::Request {
            type_name: "time_static".into(),
            prior_state: dynamic(shape, &null),
            proposed_new_state: dynamic(shape, config),
            config: dynamic(shape, config),
            ..Default::default()
        })
        .await
        .expect("PlanResourceChange")
        .into_inner();
    no_diagnostics("PlanResourceChange", &planned.diagnostics);
    let plan = decoded(shape, planned.planned_state.clone());
    let applied = provider
        .apply_resource_change(tf::apply_resource_change::Request {
            type_name: "time_static".into(),
            prior_state: dynamic(shape, &null),
            planned_state: planned.planned_state,
            config: dynamic(shape, config),
            planned_private: planned.planned_private,
            ..Default::default()
        })
        .await
        .expect("ApplyResourceChange")
        .into_inner();
    no_diagnostics("ApplyResourceChange", &applied.diagnostics);
    (plan, decoded(shape, applied.new_state), applied.private)
}

#[tokio::test]
async fn time_provider_keeps_a_static_time_through_its_life() {
    let program = crate::providers::time_provider();
    let sockets = tempfile::tempdir().unwrap();
    let client = crate::launch(&program, sockets.path()).await;
    assert_eq!(client.negotiated_version(), 5);
    assert!(client.tls_version().is_some(), "AutoMTLS is on");
    let mut provider = client
        .dispense(client::PROVIDER_V5)
        .expect("the provider plugin");

    let schema = provider
        .get_schema(tf::get_provider_schema::Request {})
        .await
        .expect("GetSchema")
        .into_inner();
    no_diagnostics("GetSchema", &schema.diagnostics);
    for resource in ["time_static", "time_offset", "time_rotating", "time_sleep"] {
        assert!(
            schema.resource_schemas.contains_key(resource),
            "{resource} in {:?}",
            schema.resource_schemas.keys()
        );
    }
    let provider_shape = Shape::of(&schema.provider);
    let static_schema = &schema.resource_schemas["time_static"];
    let shape = Shape::of(static_schema);
    let rfc3339 = static_schema
        .block
        .as_ref()
        .and_then(|b| b.attributes.iter().find(|a| a.name == "rfc3339"))
        .expect("time_static has rfc3339");
    assert!(rfc3339.optional && rfc3339.computed);

    // No provider block: an object of nulls, as Terraform sends.
    let provider_config = Value::object::<&str>([]);
    let prepared = provider
        .prepare_provider_config(tf::prepare_provider_config::Request {
            config: dynamic(&provider_shape, &provider_config),
        })
        .await
        .expect("PrepareProviderConfig")
        .into_inner();
    no_diagnostics("PrepareProviderConfig", &prepared.diagnostics);

    // A timestamp that is not RFC 3339 is refused, pointing at it.
    let refused = provider
        .validate_resource_type_config(tf::validate_resource_type_config::Request {
            type_name: "time_static".into(),
            config: dynamic(
                &shape,
                &Value::object([("rfc3339", Value::string("yesterday"))]),
            ),
            client_capabilities: None,
        })
        .await
        .expect("ValidateResourceTypeConfig")
        .into_inner();
    let errors: Vec<_> = refused
        .diagnostics
        .iter()
        .filter(|d| d.severity() == tf::diagnostic::Severity::Error)
        .collect();
    let [error] = errors.as_slice() else {
        panic!("one error for a bad timestamp: {:#?}", refused.diagnostics);
    };
    assert_eq!(values::v5_path(error.attribute.as_ref()), ["rfc3339"]);

    let given = Value::object([("rfc3339", Value::string("2001-09-09T01:46:40Z"))]);
    let now = Value::object::<&str>([]);
    for config in [&given, &now] {
        let valid = provider
            .validate_resource_type_config(tf::validate_resource_type_config::Request {
                type_name: "time_static".into(),
                config: dynamic(&shape, config),
                client_capabilities: None,
            })
            .await
            .expect("ValidateResourceTypeConfig")
            .into_inner();
        no_diagnostics("ValidateResourceTypeConfig", &valid.diagnostics);
    }

    let configured = provider
        .configure(tf::configure::Request {
            terraform_version: crate::TERRAFORM_VERSION.into(),
            config: dynamic(&provider_shape, &provider_config),
            client_capabilities: None,
        })
        .await
        .expect("Configure")
        .into_inner();
    no_diagnostics("Configure", &configured.diagnostics);

    // A given timestamp: every field is known at plan, and the apply keeps
    // the plan.
    let (plan, state, _) = create(&mut provider, &shape, &given).await;
    assert_eq!(values::int(&state, "unix"), Some(1_000_000_000));
    assert_fields_match(&state);
    assert_eq!(plan, state);

    // No timestamp: the plan leaves it unknown, the apply reads the clock.
    let (plan, state, private) = create(&mut provider, &shape, &now).await;
    for computed in ["id", "rfc3339", "year", "unix"] {
        assert!(values::unknown(&plan, computed), "{computed} in {plan:?}");
    }
    assert_fields_match(&state);
    assert!(
        values::int(&state, "year").is_some_and(|y| y >= 2026),
        "{state:?}"
    );

    // Refresh keeps the time; so does an upgrade of the JSON state (schema
    // version 0, the only one).
    let read = provider
        .read_resource(tf::read_resource::Request {
            type_name: "time_static".into(),
            current_state: dynamic(&shape, &state),
            private: private.clone(),
            ..Default::default()
        })
        .await
        .expect("ReadResource")
        .into_inner();
    no_diagnostics("ReadResource", &read.diagnostics);
    assert_eq!(decoded(&shape, read.new_state), state);
    assert_eq!(static_schema.version, 0);
    let upgraded = provider
        .upgrade_resource_state(tf::upgrade_resource_state::Request {
            type_name: "time_static".into(),
            version: 0,
            raw_state: Some(tf::RawState {
                json: shape.json(&state),
                flatmap: Default::default(),
            }),
        })
        .await
        .expect("UpgradeResourceState")
        .into_inner();
    no_diagnostics("UpgradeResourceState", &upgraded.diagnostics);
    assert_eq!(decoded(&shape, upgraded.upgraded_state), state);

    // Changing the triggers replaces the resource; the framework then plans
    // a new time (rfc3339 unknown), which its replacement rule counts too.
    let triggered = Value::object([("triggers", values::string_map([("build", "2")]))]);
    let replan = provider
        .plan_resource_change(tf::plan_resource_change::Request {
            type_name: "time_static".into(),
            prior_state: dynamic(&shape, &state),
            proposed_new_state: dynamic(
                &shape,
                &values::with(&state, "triggers", values::string_map([("build", "2")])),
            ),
            config: dynamic(&shape, &triggered),
            prior_private: private.clone(),
            ..Default::default()
        })
        .await
        .expect("PlanResourceChange (triggers)")
        .into_inner();
    no_diagnostics("PlanResourceChange (triggers)", &replan.diagnostics);
    let mut replace: Vec<Vec<String>> = replan
        .requires_replace
        .iter()
        .map(|p| values::v5_path(Some(p)))
        .collect();
    replace.sort();
    assert_eq!(replace, [["rfc3339"], ["triggers"]]);
    let replanned = decoded(&shape, replan.planned_state);
    assert!(values::unknown(&replanned, "rfc3339"), "{replanned:?}");

    // Destroy.
    let null = Value::Null;
    let planned = provider
        .plan_resource_change(tf::plan_resource_change::Request {
            type_name: "time_static".into(),
            prior_state: dynamic(&shape, &state),
            proposed_new_state: dynamic(&shape, &null),
            config: dynamic(&shape, &null),
            prior_private: private,
            ..Default::default()
        })
        .await
        .expect("PlanResourceChange (destroy)")
        .into_inner();
    no_diagnostics("PlanResourceChange (destroy)", &planned.diagnostics);
    assert!(decoded(&shape, planned.planned_state.clone()).is_null());
    let destroyed = provider
        .apply_resource_change(tf::apply_resource_change::Request {
            type_name: "time_static".into(),
            prior_state: dynamic(&shape, &state),
            planned_state: planned.planned_state,
            config: dynamic(&shape, &null),
            planned_private: planned.planned_private,
            ..Default::default()
        })
        .await
        .expect("ApplyResourceChange (destroy)")
        .into_inner();
    no_diagnostics("ApplyResourceChange (destroy)", &destroyed.diagnostics);
    assert!(decoded(&shape, destroyed.new_state).is_null());

    let stopped = provider
        .stop(tf::stop::Request {})
        .await
        .expect("Stop")
        .into_inner();
    assert_eq!(stopped.error, "");
    drop(provider);
    crate::stop_gracefully(client, sockets.path()).await;
}
