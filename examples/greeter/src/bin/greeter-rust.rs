//! The plugin of go-plugin's basic example, in Rust: greets with `Hello!`
//! and logs through hclog JSON on stderr, as the Go plugin does.

use goplug::plugin::{ServeConfig, Services};
use goplug_example_greeter::{Greeter, HANDSHAKE, PLUGIN_NAME, greeter_server};

struct GreeterHello;

impl Greeter for GreeterHello {
    fn greet(&self) -> String {
        tracing::debug!("message from GreeterHello.Greet");
        "Hello!".to_owned()
    }
}

fn main() -> std::process::ExitCode {
    goplug::log::init_with("trace");
    tracing::debug!(foo = "bar", "message from plugin");
    goplug::plugin::run(
        ServeConfig::new(HANDSHAKE)
            .plugins(Services::new().netrpc(PLUGIN_NAME, |_| greeter_server(GreeterHello))),
    )
}
