//! A provider built with the crate, driven through goplug's host over
//! both protocol versions (Rust host, Rust provider, in one process): the
//! RPCs hosts send, the values they carry, and the diagnostics back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use goplug::host::{Channel, PluginSet};
use goplug_terraform::cty::{self, AttributePath, Type, Value};
use goplug_terraform::schema::{Attribute, Block, NestedBlock, Nesting, Schema};
use goplug_terraform::{
    ChangeRequest, ConfigureRequest, DataSource, Diagnostic, Diagnostics, Provider, ProviderServer,
    Resource,
};

type Store = Arc<Mutex<BTreeMap<String, Value>>>;

#[derive(Default)]
struct Demo {
    prefix: Arc<Mutex<String>>,
}

impl Provider for Demo {
    fn schema(&self) -> Schema {
        Schema::new().attribute(Attribute::new("prefix", Type::String).optional())
    }

    async fn validate(&self, config: &Value) -> Diagnostics {
        let mut diags = Diagnostics::new();
        if config.get("prefix").and_then(Value::as_str) == Some("bad") {
            diags
                .push(Diagnostic::error("Bad prefix", "no").at(AttributePath::attribute("prefix")));
        }
        diags
    }

    async fn configure(&self, request: ConfigureRequest<'_>) -> Diagnostics {
        let prefix = request
            .config
            .get("prefix")
            .and_then(Value::as_str)
            .unwrap_or("");
        *self.prefix.lock().unwrap() = format!("{prefix}{}-", request.terraform_version);
        Diagnostics::new()
    }
}

struct Item {
    prefix: Arc<Mutex<String>>,
    store: Store,
}

fn item_schema() -> Schema {
    Schema::new()
        .version(1)
        .attribute(
            Attribute::new("name", Type::String)
                .required()
                .requires_replace(),
        )
        .attribute(Attribute::new("size", Type::Number).optional())
        .attribute(Attribute::new("tags", Type::map(Type::String)).optional())
        .attribute(Attribute::new("id", Type::String).computed())
        .attribute(Attribute::new("note", Type::String).computed())
        .block(NestedBlock::new(
            "rule",
            Nesting::List,
            Block::new().attribute(Attribute::new("name", Type::String).required()),
        ))
}

fn with(state: &Value, changes: &[(&str, Value)]) -> Value {
    let mut map = state.as_map().cloned().unwrap_or_default();
    for (name, value) in changes {
        map.insert((*name).to_owned(), value.clone());
    }
    Value::Object(map)
}

impl Resource for Item {
    fn schema(&self) -> Schema {
        item_schema()
    }

    async fn validate(&self, config: &Value) -> Diagnostics {
        let mut diags = Diagnostics::new();
        if config.get("name").and_then(Value::as_str) == Some("") {
            diags.push(Diagnostic::error("Empty name", "").at(AttributePath::attribute("name")));
        }
        diags
    }

    async fn create(&self, request: ChangeRequest<'_>) -> Result<Value, Diagnostics> {
        let name = request
            .planned_state
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if name == "leave-unknown" {
            // A bug the server must report, not send.
            return Ok(request.planned_state.clone());
        }
        let id = format!("{}{name}", self.prefix.lock().unwrap());
        let state = with(
            request.planned_state,
            &[("id", id.clone().into()), ("note", "created".into())],
        );
        self.store.lock().unwrap().insert(id, state.clone());
        Ok(state)
    }

    async fn read(&self, state: &Value) -> Result<Option<Value>, Diagnostics> {
        let id = state.get("id").and_then(Value::as_str).unwrap_or("");
        Ok(self.store.lock().unwrap().get(id).cloned())
    }

    async fn update(&self, request: ChangeRequest<'_>) -> Result<Value, Diagnostics> {
        let id = request
            .prior_state
            .get("id")
            .cloned()
            .unwrap_or(Value::Null);
        let state = with(
            request.planned_state,
            &[("id", id.clone()), ("note", "updated".into())],
        );
        self.store
            .lock()
            .unwrap()
            .insert(id.as_str().unwrap_or("").to_owned(), state.clone());
        Ok(state)
    }

    async fn delete(&self, state: &Value) -> Result<(), Diagnostics> {
        let id = state.get("id").and_then(Value::as_str).unwrap_or("");
        self.store.lock().unwrap().remove(id);
        Ok(())
    }

    async fn import(&self, id: &str) -> Result<Value, Diagnostics> {
        Ok(Value::object([("id", Value::from(id))]))
    }

    /// Version 0 called the name `label`.
    async fn upgrade(&self, version: i64, json: &[u8]) -> Result<Value, Diagnostics> {
        assert_eq!(version, 0);
        let old_type = Type::object([("label", Type::String), ("id", Type::String)]);
        let old = cty::json::decode(json, &old_type).map_err(Diagnostics::from)?;
        Ok(Value::object([
            ("name", old.get("label").cloned().unwrap_or(Value::Null)),
            ("id", old.get("id").cloned().unwrap_or(Value::Null)),
            ("rule", Value::List(vec![])),
        ]))
    }
}

struct Echo;

impl DataSource for Echo {
    fn schema(&self) -> Schema {
        Schema::new()
            .attribute(Attribute::new("input", Type::String).required())
            .attribute(Attribute::new("output", Type::String).computed())
    }

    async fn read(&self, config: &Value) -> Result<Value, Diagnostics> {
        let input = config.get("input").and_then(Value::as_str).unwrap_or("");
        Ok(Value::object([
            ("input", input.into()),
            ("output", input.to_uppercase().into()),
        ]))
    }
}

fn server(store: &Store) -> ProviderServer {
    let demo = Demo::default();
    let prefix = demo.prefix.clone();
    ProviderServer::new(demo)
        .resource(
            "demo_item",
            Item {
                prefix,
                store: store.clone(),
            },
        )
        .data_source("demo_echo", Echo)
}

fn item(name: &str, id: Value, note: Value) -> Value {
    Value::object([
        ("name", Value::from(name)),
        ("size", Value::Number(cty::Number::parse("1.5").unwrap())),
        (
            "tags",
            Value::Map([("k".to_owned(), Value::from("v"))].into()),
        ),
        ("id", id),
        ("note", note),
        (
            "rule",
            Value::List(vec![Value::object([("name", Value::from("r"))])]),
        ),
    ])
}

fn msgpack(value: &Value) -> Vec<u8> {
    cty::msgpack::encode(value, &item_schema().value_type()).unwrap()
}

fn decode(bytes: &[u8]) -> Value {
    cty::msgpack::decode(bytes, &item_schema().value_type()).unwrap()
}

/// The same conversation over either protocol: `$pb` is the module, the
/// idents the RPCs whose names differ.
macro_rules! lifecycle {
    ($pb:ident, $version:literal, $get_schema:ident, $validate_provider:ident, $validate_resource:ident, $configure:ident, $stop:ident) => {{
        use goplug_terraform::$pb as pb;
        use pb::provider_client::ProviderClient;

        let dv = |bytes: Vec<u8>| {
            Some(pb::DynamicValue {
                msgpack: bytes,
                json: Vec::new(),
            })
        };
        let store = Store::default();
        let config = server(&store)
            .protocol_versions([$version])
            .into_serve_config();
        let plugins = PluginSet::new().grpc_with("provider", ProviderClient::<Channel>::new);
        let client = goplug::testing::connect(config, plugins).await.unwrap();
        assert_eq!(client.negotiated_version(), $version);
        let mut provider: ProviderClient<Channel> = client.dispense_named("provider").unwrap();

        // The schema: attributes with their JSON types and flags, blocks.
        let schema = provider
            .$get_schema(pb::get_provider_schema::Request {})
            .await
            .unwrap()
            .into_inner();
        let wire_schema = &schema.resource_schemas["demo_item"];
        assert_eq!(wire_schema.version, 1);
        let block = wire_schema.block.as_ref().unwrap();
        let tags = block.attributes.iter().find(|a| a.name == "tags").unwrap();
        assert_eq!(tags.r#type, br#"["map","string"]"#);
        assert!(tags.optional && !tags.required && !tags.computed);
        let id = block.attributes.iter().find(|a| a.name == "id").unwrap();
        assert!(id.computed && !id.optional);
        assert_eq!(block.block_types[0].type_name, "rule");
        assert!(schema.data_source_schemas.contains_key("demo_echo"));
        assert!(schema.provider.is_some() && schema.provider_meta.is_some());

        // Provider validation: an attribute-scoped error.
        let bad = cty::msgpack::encode(
            &Value::object([("prefix", Value::from("bad"))]),
            &Type::object([("prefix", Type::String)]),
        )
        .unwrap();
        let reply = provider
            .$validate_provider(pb::$validate_provider::Request { config: dv(bad) })
            .await
            .unwrap()
            .into_inner();
        let diag = &reply.diagnostics[0];
        assert_eq!(diag.summary, "Bad prefix");
        assert_eq!(diag.severity, pb::diagnostic::Severity::Error as i32);
        let step = &diag.attribute.as_ref().unwrap().steps[0];
        assert_eq!(
            step.selector,
            Some(pb::attribute_path::step::Selector::AttributeName(
                "prefix".into()
            ))
        );

        // Resource validation with refined unknowns in the config.
        let mut config = msgpack(&item("x", Value::Null, Value::Null));
        // name is a refined unknown (not null, prefix "x"), as OpenTofu sends.
        let at = config.windows(5).position(|w| w == b"\xa4name").unwrap() + 5;
        config.splice(
            at..at + 2,
            [0xc7, 0x06, 0x0c, 0x82, 0x01, 0xc2, 0x02, 0xa1, b'x'],
        );
        let reply = provider
            .$validate_resource(pb::$validate_resource::Request {
                type_name: "demo_item".into(),
                config: dv(config),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(reply.diagnostics.is_empty(), "{:?}", reply.diagnostics);
        let reply = provider
            .$validate_resource(pb::$validate_resource::Request {
                type_name: "demo_item".into(),
                config: dv(msgpack(&item("", Value::Null, Value::Null))),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.diagnostics[0].summary, "Empty name");

        // Configure: the host's version reaches the provider.
        let empty = cty::msgpack::encode(
            &Value::object::<&str>([]),
            &Type::object([("prefix", Type::String)]),
        )
        .unwrap();
        let reply = provider
            .$configure(pb::$configure::Request {
                terraform_version: "1.6.3".into(),
                config: dv(empty),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(reply.diagnostics.is_empty());

        // Plan a create: computed attributes unknown, configuration kept.
        let config = msgpack(&item("a", Value::Null, Value::Null));
        let plan = provider
            .plan_resource_change(pb::plan_resource_change::Request {
                type_name: "demo_item".into(),
                prior_state: dv(vec![0xc0]),
                proposed_new_state: dv(config.clone()),
                config: dv(config.clone()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(plan.diagnostics.is_empty(), "{:?}", plan.diagnostics);
        let planned = plan.planned_state.unwrap().msgpack;
        assert_eq!(decode(&planned), item("a", Value::Unknown, Value::Unknown));

        // Apply: every value known, in the store.
        let applied = provider
            .apply_resource_change(pb::apply_resource_change::Request {
                type_name: "demo_item".into(),
                prior_state: dv(vec![0xc0]),
                planned_state: dv(planned),
                config: dv(config.clone()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(applied.diagnostics.is_empty(), "{:?}", applied.diagnostics);
        let state = applied.new_state.unwrap().msgpack;
        let want = item("a", "1.6.3-a".into(), "created".into());
        assert_eq!(decode(&state), want);

        // Read: unchanged; then gone once deleted outside.
        let read = |state: Vec<u8>| pb::read_resource::Request {
            type_name: "demo_item".into(),
            current_state: dv(state),
            private: b"kept".to_vec(),
            ..Default::default()
        };
        let reply = provider
            .read_resource(read(state.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(decode(&reply.new_state.unwrap().msgpack), want);
        assert_eq!(reply.private, b"kept");

        // Update in place vs replace.
        let changed = msgpack(&with(&want, &[("size", Value::from(2))]));
        let plan = provider
            .plan_resource_change(pb::plan_resource_change::Request {
                type_name: "demo_item".into(),
                prior_state: dv(state.clone()),
                proposed_new_state: dv(changed.clone()),
                config: dv(msgpack(&with(
                    &item("a", Value::Null, Value::Null),
                    &[("size", Value::from(2))],
                ))),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(plan.requires_replace.is_empty());
        let renamed = msgpack(&with(&want, &[("name", "b".into())]));
        let plan = provider
            .plan_resource_change(pb::plan_resource_change::Request {
                type_name: "demo_item".into(),
                prior_state: dv(state.clone()),
                proposed_new_state: dv(renamed),
                config: dv(msgpack(&item("b", Value::Null, Value::Null))),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(plan.requires_replace.len(), 1);
        assert_eq!(
            plan.requires_replace[0].steps[0].selector,
            Some(pb::attribute_path::step::Selector::AttributeName(
                "name".into()
            ))
        );

        // An unknown left after apply is the provider's bug: reported.
        let bad_plan = msgpack(&item("leave-unknown", Value::Unknown, Value::Unknown));
        let reply = provider
            .apply_resource_change(pb::apply_resource_change::Request {
                type_name: "demo_item".into(),
                prior_state: dv(vec![0xc0]),
                planned_state: dv(bad_plan.clone()),
                config: dv(bad_plan),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            reply.diagnostics[0]
                .summary
                .contains("unknown value after apply"),
            "{:?}",
            reply.diagnostics
        );

        // Upgrade a version-0 state, and a current one.
        let reply = provider
            .upgrade_resource_state(pb::upgrade_resource_state::Request {
                type_name: "demo_item".into(),
                version: 0,
                raw_state: Some(pb::RawState {
                    json: br#"{"label":"old","id":"i"}"#.to_vec(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner();
        let upgraded = decode(&reply.upgraded_state.unwrap().msgpack);
        assert_eq!(upgraded.get("name"), Some(&Value::from("old")));
        assert_eq!(upgraded.get("size"), Some(&Value::Null));
        let json = cty::json::encode(&want, &item_schema().value_type()).unwrap();
        let reply = provider
            .upgrade_resource_state(pb::upgrade_resource_state::Request {
                type_name: "demo_item".into(),
                version: 1,
                raw_state: Some(pb::RawState {
                    json: json.into_bytes(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(decode(&reply.upgraded_state.unwrap().msgpack), want);

        // Import, then the data source.
        let reply = provider
            .import_resource_state(pb::import_resource_state::Request {
                type_name: "demo_item".into(),
                id: "1.6.3-a".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let imported = &reply.imported_resources[0];
        assert_eq!(imported.type_name, "demo_item");
        let imported = decode(&imported.state.as_ref().unwrap().msgpack);
        assert_eq!(imported.get("id"), Some(&Value::from("1.6.3-a")));
        let echo_type = Type::object([("input", Type::String), ("output", Type::String)]);
        let reply = provider
            .read_data_source(pb::read_data_source::Request {
                type_name: "demo_echo".into(),
                config: dv(cty::msgpack::encode(
                    &Value::object([("input", Value::from("hi"))]),
                    &echo_type,
                )
                .unwrap()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let echoed = cty::msgpack::decode(&reply.state.unwrap().msgpack, &echo_type).unwrap();
        assert_eq!(echoed.get("output"), Some(&Value::from("HI")));

        // Destroy: a null plan applies as a delete.
        let reply = provider
            .apply_resource_change(pb::apply_resource_change::Request {
                type_name: "demo_item".into(),
                prior_state: dv(state.clone()),
                planned_state: dv(vec![0xc0]),
                config: dv(vec![0xc0]),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.new_state.unwrap().msgpack, [0xc0]);
        assert!(store.lock().unwrap().is_empty());
        let reply = provider
            .read_resource(read(state))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            reply.new_state.unwrap().msgpack,
            [0xc0],
            "a deleted object reads as gone"
        );

        // Bad input gives diagnostics, never a failed call or a panic.
        for (type_name, bytes) in [
            ("demo_item", vec![0x81, 0xa1]),
            ("demo_item", vec![0x81, 0xa4, b'n', b'a', b'm', b'e', 0xc0]),
            ("demo_item", [0x91].repeat(100_000)),
            ("no_such_type", vec![0xc0]),
        ] {
            let reply = provider
                .plan_resource_change(pb::plan_resource_change::Request {
                    type_name: type_name.into(),
                    prior_state: dv(vec![0xc0]),
                    proposed_new_state: dv(bytes.clone()),
                    config: dv(bytes),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            assert!(!reply.diagnostics.is_empty(), "{type_name}: no diagnostic");
        }

        let reply = provider
            .$stop(pb::$stop::Request {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.error, "");
        assert!(client.shutdown().await.graceful);
    }};
}

#[tokio::test]
async fn protocol_6_carries_the_whole_lifecycle() {
    lifecycle!(
        tfplugin6,
        6,
        get_provider_schema,
        validate_provider_config,
        validate_resource_config,
        configure_provider,
        stop_provider
    );
}

#[tokio::test]
async fn protocol_5_carries_the_whole_lifecycle() {
    lifecycle!(
        tfplugin5,
        5,
        get_schema,
        prepare_provider_config,
        validate_resource_type_config,
        configure,
        stop
    );
}
