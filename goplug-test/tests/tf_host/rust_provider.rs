//! The same host against the Rust example provider
//! (`examples/terraform-provider-goplug`) as a process, over each protocol:
//! `goplug_file` creates, reads and deletes a real file.

use std::path::Path;

use goplug_terraform::client;
use goplug_terraform::cty::Value;
use goplug_test::TF_PROVIDER_GOPLUG;

use crate::values::{self, Shape};

/// The hex SHA-256 of `hello`.
const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

/// One pass over a `goplug_file` with the protocol module `$tf` and its
/// names for the schema and configure calls.
macro_rules! file_life {
    ($provider:expr, $tf:ident, $get_schema:ident, $configure:ident, $configure_mod:ident, $root:expr) => {{
        use goplug_terraform::$tf as tf;
        let provider = &mut $provider;
        let root: &Path = $root;
        let dynamic = |shape: &Shape, value: &Value| {
            Some(tf::DynamicValue {
                msgpack: shape.msgpack(value),
                json: Vec::new(),
            })
        };
        let schema = provider
            .$get_schema(tf::get_provider_schema::Request {})
            .await
            .expect("schema")
            .into_inner();
        assert!(schema.diagnostics.is_empty(), "{:#?}", schema.diagnostics);
        let provider_shape = Shape::of(&schema.provider);
        let file = Shape::of(&schema.resource_schemas["goplug_file"]);
        let config = Value::object([("root", Value::string(root.display().to_string()))]);
        let configured = provider
            .$configure(tf::$configure_mod::Request {
                terraform_version: crate::TERRAFORM_VERSION.into(),
                config: dynamic(&provider_shape, &config),
                client_capabilities: None,
            })
            .await
            .expect("configure")
            .into_inner();
        assert!(
            configured.diagnostics.is_empty(),
            "{:#?}",
            configured.diagnostics
        );

        let config = Value::object([("path", "a.txt".into()), ("content", "hello".into())]);
        let null = Value::Null;
        let planned = provider
            .plan_resource_change(tf::plan_resource_change::Request {
                type_name: "goplug_file".into(),
                prior_state: dynamic(&file, &null),
                proposed_new_state: dynamic(&file, &config),
                config: dynamic(&file, &config),
                ..Default::default()
            })
            .await
            .expect("PlanResourceChange")
            .into_inner();
        assert!(planned.diagnostics.is_empty(), "{:#?}", planned.diagnostics);
        let plan = file.decode(&planned.planned_state.clone().expect("a plan").msgpack);
        assert_eq!(values::text(&plan, "id"), Some("a.txt"));
        assert!(values::unknown(&plan, "sha256"), "{plan:?}");
        let applied = provider
            .apply_resource_change(tf::apply_resource_change::Request {
                type_name: "goplug_file".into(),
                prior_state: dynamic(&file, &null),
                planned_state: planned.planned_state,
                config: dynamic(&file, &config),
                planned_private: planned.planned_private,
                ..Default::default()
            })
            .await
            .expect("ApplyResourceChange")
            .into_inner();
        assert!(applied.diagnostics.is_empty(), "{:#?}", applied.diagnostics);
        let state = file.decode(&applied.new_state.expect("a state").msgpack);
        assert_eq!(values::text(&state, "sha256"), Some(HELLO_SHA256));
        assert_eq!(
            std::fs::read_to_string(root.join("a.txt")).unwrap(),
            "hello"
        );

        // A file deleted outside Terraform reads as gone.
        std::fs::remove_file(root.join("a.txt")).unwrap();
        let read = provider
            .read_resource(tf::read_resource::Request {
                type_name: "goplug_file".into(),
                current_state: dynamic(&file, &state),
                ..Default::default()
            })
            .await
            .expect("ReadResource")
            .into_inner();
        assert!(read.diagnostics.is_empty(), "{:#?}", read.diagnostics);
        assert!(
            file.decode(&read.new_state.expect("a state").msgpack)
                .is_null()
        );
    }};
}

#[tokio::test]
async fn rust_provider_serves_the_same_host_over_both_protocols() {
    for version in [6, 5] {
        let root = tempfile::tempdir().unwrap();
        let sockets = tempfile::tempdir().unwrap();
        let mut command = std::process::Command::new(&TF_PROVIDER_GOPLUG);
        command.env("TF_PROVIDER_PROTOCOL", version.to_string());
        let client = client::builder(command)
            .unix_socket_dir(sockets.path())
            .shutdown_grace(crate::SHUTDOWN_GRACE)
            .start()
            .await
            .expect("launching the Rust provider");
        assert_eq!(client.negotiated_version(), version);
        assert!(client.tls_version().is_some(), "AutoMTLS is on");
        if version == 6 {
            let mut provider = client.dispense(client::PROVIDER_V6).unwrap();
            file_life!(
                provider,
                tfplugin6,
                get_provider_schema,
                configure_provider,
                configure_provider,
                root.path()
            );
        } else {
            let mut provider = client.dispense(client::PROVIDER_V5).unwrap();
            file_life!(
                provider,
                tfplugin5,
                get_schema,
                configure,
                configure,
                root.path()
            );
        }
        crate::stop_gracefully(client, sockets.path()).await;
    }
}
