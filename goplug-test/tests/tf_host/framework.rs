//! `interop/tfprovider-framework` (terraform-plugin-framework v1.19.0)
//! over protocol 6: resource `fwdemo_item` and data source `fwdemo_echo`,
//! whose computed values are functions of the configuration.

use goplug::host::Channel;
use goplug_terraform::tfplugin6 as tf;
use tf::provider_client::ProviderClient;

use goplug_terraform::client;
use goplug_terraform::cty::Value;

use crate::values::{self, Shape};

/// The provider's schema version for `fwdemo_item`: version 0 stored the
/// name as `title`.
const ITEM_VERSION: i64 = 1;

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

/// Fails with the provider's diagnostics, if it sent any.
fn no_diagnostics(call: &str, diagnostics: &[tf::Diagnostic]) {
    assert!(diagnostics.is_empty(), "{call}: {diagnostics:#?}");
}

struct Shapes {
    provider: Shape,
    item: Shape,
    echo: Shape,
}

/// GetProviderSchema, checked against what the Go code declares.
async fn schema(provider: &mut ProviderClient<Channel>) -> Shapes {
    let schema = provider
        .get_provider_schema(tf::get_provider_schema::Request {})
        .await
        .expect("GetProviderSchema")
        .into_inner();
    no_diagnostics("GetProviderSchema", &schema.diagnostics);
    let capabilities = schema.server_capabilities.expect("server capabilities");
    assert!(capabilities.plan_destroy, "the framework plans destroys");
    let item = &schema.resource_schemas["fwdemo_item"];
    assert_eq!(item.version, ITEM_VERSION);
    let item_block = item.block.as_ref().expect("fwdemo_item's block");
    let flags = |name: &str| {
        let attribute = item_block
            .attributes
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("fwdemo_item has no attribute {name}"));
        (attribute.required, attribute.optional, attribute.computed)
    };
    assert_eq!(flags("name"), (true, false, false));
    assert_eq!(flags("id"), (false, false, true));
    assert_eq!(flags("upper"), (false, false, true));
    assert_eq!(flags("length"), (false, false, true));
    let echo = &schema.data_source_schemas["fwdemo_echo"];
    Shapes {
        provider: Shape::of(&schema.provider),
        item: Shape::of(item),
        echo: Shape::of(echo),
    }
}

#[tokio::test]
async fn framework_provider_plans_applies_reads_upgrades_and_destroys() {
    let program = crate::providers::framework_provider();
    let sockets = tempfile::tempdir().unwrap();
    let client = crate::launch(&program, sockets.path()).await;
    assert_eq!(client.negotiated_version(), 6);
    assert!(client.tls_version().is_some(), "AutoMTLS is on");
    let mut provider = client
        .dispense(client::PROVIDER_V6)
        .expect("the provider plugin");
    let shapes = schema(&mut provider).await;

    // The provider block, validated then configured.
    let provider_config = Value::object([("prefix", Value::string("tf-"))]);
    let validated = provider
        .validate_provider_config(tf::validate_provider_config::Request {
            config: dynamic(&shapes.provider, &provider_config),
        })
        .await
        .expect("ValidateProviderConfig")
        .into_inner();
    no_diagnostics("ValidateProviderConfig", &validated.diagnostics);

    // An empty name is refused, pointing at the attribute.
    let refused = provider
        .validate_resource_config(tf::validate_resource_config::Request {
            type_name: "fwdemo_item".into(),
            config: dynamic(&shapes.item, &Value::object([("name", Value::string(""))])),
            client_capabilities: None,
        })
        .await
        .expect("ValidateResourceConfig")
        .into_inner();
    let [diagnostic] = refused.diagnostics.as_slice() else {
        panic!(
            "one diagnostic for an empty name: {:#?}",
            refused.diagnostics
        );
    };
    assert_eq!(diagnostic.severity(), tf::diagnostic::Severity::Error);
    assert_eq!(diagnostic.summary, "Empty name");
    assert_eq!(values::v6_path(diagnostic.attribute.as_ref()), ["name"]);

    let config = Value::object([("name", Value::string("alpha"))]);
    let valid = provider
        .validate_resource_config(tf::validate_resource_config::Request {
            type_name: "fwdemo_item".into(),
            config: dynamic(&shapes.item, &config),
            client_capabilities: None,
        })
        .await
        .expect("ValidateResourceConfig")
        .into_inner();
    no_diagnostics("ValidateResourceConfig", &valid.diagnostics);
    let echo_config = Value::object([("input", Value::string("goplug"))]);
    let valid = provider
        .validate_data_resource_config(tf::validate_data_resource_config::Request {
            type_name: "fwdemo_echo".into(),
            config: dynamic(&shapes.echo, &echo_config),
        })
        .await
        .expect("ValidateDataResourceConfig")
        .into_inner();
    no_diagnostics("ValidateDataResourceConfig", &valid.diagnostics);

    let configured = provider
        .configure_provider(tf::configure_provider::Request {
            terraform_version: crate::TERRAFORM_VERSION.into(),
            config: dynamic(&shapes.provider, &provider_config),
            client_capabilities: None,
        })
        .await
        .expect("ConfigureProvider")
        .into_inner();
    no_diagnostics("ConfigureProvider", &configured.diagnostics);

    // Create: the plan leaves the computed attributes unknown, the apply
    // fills them.
    let null = Value::Null;
    let planned = provider
        .plan_resource_change(tf::plan_resource_change::Request {
            type_name: "fwdemo_item".into(),
            prior_state: dynamic(&shapes.item, &null),
            proposed_new_state: dynamic(&shapes.item, &config),
            config: dynamic(&shapes.item, &config),
            ..Default::default()
        })
        .await
        .expect("PlanResourceChange")
        .into_inner();
    no_diagnostics("PlanResourceChange", &planned.diagnostics);
    let plan = decoded(&shapes.item, planned.planned_state.clone());
    assert_eq!(values::text(&plan, "name"), Some("alpha"));
    for computed in ["id", "upper", "length"] {
        assert!(values::unknown(&plan, computed), "{computed} in {plan:?}");
    }
    let applied = provider
        .apply_resource_change(tf::apply_resource_change::Request {
            type_name: "fwdemo_item".into(),
            prior_state: dynamic(&shapes.item, &null),
            // As Terraform: the planned state goes back as it came.
            planned_state: planned.planned_state,
            config: dynamic(&shapes.item, &config),
            planned_private: planned.planned_private,
            ..Default::default()
        })
        .await
        .expect("ApplyResourceChange")
        .into_inner();
    no_diagnostics("ApplyResourceChange", &applied.diagnostics);
    let state = decoded(&shapes.item, applied.new_state);
    assert_eq!(values::text(&state, "id"), Some("tf-alpha"));
    assert_eq!(values::text(&state, "name"), Some("alpha"));
    assert_eq!(values::text(&state, "upper"), Some("ALPHA"));
    assert_eq!(values::int(&state, "length"), Some(5));

    // Refresh: the state comes back unchanged.
    let read = provider
        .read_resource(tf::read_resource::Request {
            type_name: "fwdemo_item".into(),
            current_state: dynamic(&shapes.item, &state),
            private: applied.private.clone(),
            ..Default::default()
        })
        .await
        .expect("ReadResource")
        .into_inner();
    no_diagnostics("ReadResource", &read.diagnostics);
    assert_eq!(decoded(&shapes.item, read.new_state), state);

    // Renaming forces replacement.
    let renamed = Value::object([("name", Value::string("beta"))]);
    let replan = provider
        .plan_resource_change(tf::plan_resource_change::Request {
            type_name: "fwdemo_item".into(),
            prior_state: dynamic(&shapes.item, &state),
            proposed_new_state: dynamic(
                &shapes.item,
                &values::with(&state, "name", Value::string("beta")),
            ),
            config: dynamic(&shapes.item, &renamed),
            prior_private: applied.private.clone(),
            ..Default::default()
        })
        .await
        .expect("PlanResourceChange (rename)")
        .into_inner();
    no_diagnostics("PlanResourceChange (rename)", &replan.diagnostics);
    let replace: Vec<Vec<String>> = replan
        .requires_replace
        .iter()
        .map(|p| values::v6_path(Some(p)))
        .collect();
    assert_eq!(replace, [["name"]]);

    // State upgrades: the current version's JSON state comes back as the
    // same value; a version-0 state has "title" renamed to "name" and the
    // computed attributes filled.
    let upgraded = provider
        .upgrade_resource_state(tf::upgrade_resource_state::Request {
            type_name: "fwdemo_item".into(),
            version: ITEM_VERSION,
            raw_state: Some(tf::RawState {
                json: shapes.item.json(&state),
                flatmap: Default::default(),
            }),
        })
        .await
        .expect("UpgradeResourceState")
        .into_inner();
    no_diagnostics("UpgradeResourceState", &upgraded.diagnostics);
    assert_eq!(decoded(&shapes.item, upgraded.upgraded_state), state);
    let upgraded = provider
        .upgrade_resource_state(tf::upgrade_resource_state::Request {
            type_name: "fwdemo_item".into(),
            version: 0,
            raw_state: Some(tf::RawState {
                json: br#"{"id":"tf-old","title":"old"}"#.to_vec(),
                flatmap: Default::default(),
            }),
        })
        .await
        .expect("UpgradeResourceState (version 0)")
        .into_inner();
    no_diagnostics("UpgradeResourceState (version 0)", &upgraded.diagnostics);
    let old = decoded(&shapes.item, upgraded.upgraded_state);
    assert_eq!(values::text(&old, "id"), Some("tf-old"));
    assert_eq!(values::text(&old, "name"), Some("old"));
    assert_eq!(values::text(&old, "upper"), Some("OLD"));
    assert_eq!(values::int(&old, "length"), Some(3));

    // The data source.
    let echoed = provider
        .read_data_source(tf::read_data_source::Request {
            type_name: "fwdemo_echo".into(),
            config: dynamic(&shapes.echo, &echo_config),
            ..Default::default()
        })
        .await
        .expect("ReadDataSource")
        .into_inner();
    no_diagnostics("ReadDataSource", &echoed.diagnostics);
    let echo = decoded(&shapes.echo, echoed.state);
    assert_eq!(values::text(&echo, "input"), Some("goplug"));
    assert_eq!(values::text(&echo, "output"), Some("tf-gulpog"));

    // Destroy: a null plan, then a null state.
    let planned = provider
        .plan_resource_change(tf::plan_resource_change::Request {
            type_name: "fwdemo_item".into(),
            prior_state: dynamic(&shapes.item, &state),
            proposed_new_state: dynamic(&shapes.item, &null),
            config: dynamic(&shapes.item, &null),
            prior_private: applied.private.clone(),
            ..Default::default()
        })
        .await
        .expect("PlanResourceChange (destroy)")
        .into_inner();
    no_diagnostics("PlanResourceChange (destroy)", &planned.diagnostics);
    assert!(decoded(&shapes.item, planned.planned_state.clone()).is_null());
    let destroyed = provider
        .apply_resource_change(tf::apply_resource_change::Request {
            type_name: "fwdemo_item".into(),
            prior_state: dynamic(&shapes.item, &state),
            planned_state: planned.planned_state,
            config: dynamic(&shapes.item, &null),
            planned_private: planned.planned_private,
            ..Default::default()
        })
        .await
        .expect("ApplyResourceChange (destroy)")
        .into_inner();
    no_diagnostics("ApplyResourceChange (destroy)", &destroyed.diagnostics);
    assert!(decoded(&shapes.item, destroyed.new_state).is_null());

    let stopped = provider
        .stop_provider(tf::stop_provider::Request {})
        .await
        .expect("StopProvider")
        .into_inner();
    assert_eq!(stopped.error, "");
    drop(provider);
    crate::stop_gracefully(client, sockets.path()).await;
}
