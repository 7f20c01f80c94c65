//! go-plugin's `examples/basic`: a Greeter served over net/rpc.
//!
//! The interface is Go's `Greet() string`, called as `Plugin.Greet` with a
//! nil `interface{}` argument and a `string` reply, so either half can be
//! swapped for go-plugin's.

use goplug::netrpc::gob::GoInterface;
use goplug::netrpc::rpc::{NetRpcServer, RpcClient};

/// The handshake of go-plugin's basic example.
pub const HANDSHAKE: goplug::HandshakeConfig =
    goplug::HandshakeConfig::new(1, "BASIC_PLUGIN", "hello");

/// The plugin's name in the plugin map.
pub const PLUGIN_NAME: &str = "greeter";

/// What the plugin implements.
pub trait Greeter: Send + Sync + 'static {
    /// A greeting.
    fn greet(&self) -> String;
}

/// The host's view of the plugin: go-plugin's `GreeterRPC`.
#[derive(Clone, Debug)]
pub struct GreeterRpc {
    client: RpcClient,
}

impl GreeterRpc {
    /// Wraps the net/rpc client of the dispensed plugin.
    pub fn new(client: RpcClient) -> Self {
        Self { client }
    }

    /// Calls `Plugin.Greet`.
    ///
    /// # Errors
    ///
    /// The call's error: the plugin's error text, or a broken connection.
    pub async fn greet(&self) -> goplug::Result<String> {
        self.client.call("Plugin.Greet", &GoInterface::nil()).await
    }
}

/// The plugin's side: go-plugin's `GreeterRPCServer`.
pub fn greeter_server(greeter: impl Greeter) -> NetRpcServer {
    let greeter = std::sync::Arc::new(greeter);
    NetRpcServer::new().method("Greet", move |_: GoInterface| {
        let greeting = greeter.greet();
        async move { Ok::<_, String>(greeting) }
    })
}
