//! The route a supervised net/rpc plugin's client takes: each call goes to
//! the current process, through a client dispensed from it once per
//! generation.

use std::sync::Arc;
use std::time::Instant;

use super::route::Shared;
use crate::error::{Error, Result};
use crate::host::netrpc::Dispenser;
use crate::netrpc::gob::{Type, Value};
use crate::netrpc::rpc::{Body, BoxFuture, RpcClient, RpcRoute};
use crate::transport::Route as _;

/// One dispensed plugin of a supervised net/rpc plugin.
pub(super) struct NetRpcRoute {
    shared: Arc<Shared>,
    plugin: &'static str,
    /// The client dispensed from the process of a generation.
    dispensed: tokio::sync::Mutex<Option<(u64, RpcClient)>>,
}

impl NetRpcRoute {
    pub(super) fn new(shared: Arc<Shared>, plugin: &'static str) -> Self {
        Self {
            shared,
            plugin,
            dispensed: tokio::sync::Mutex::new(None),
        }
    }

    /// The client on the process of `generation`, dispensed on first use.
    async fn client(&self, generation: u64, dispenser: Option<Dispenser>) -> Result<RpcClient> {
        let mut dispensed = self.dispensed.lock().await;
        if let Some((at, client)) = &*dispensed
            && *at == generation
            && !client.is_shut_down()
        {
            return Ok(client.clone());
        }
        let Some(dispenser) = dispenser else {
            return Err(Error::Config(format!(
                "plugin {:?} of {:?} is dispensed as net/rpc, but the plugin speaks gRPC: \
                 dispense it as a GrpcPlugin",
                self.plugin, self.shared.name
            )));
        };
        let client = dispenser.dispense(self.plugin).await?;
        *dispensed = Some((generation, client.clone()));
        Ok(client)
    }

    async fn call(&self, service_method: &str, ty: &Type, body: &Value) -> Result<Body> {
        let started = Instant::now();
        let routed = self
            .shared
            .route(
                None,
                |serving| serving.netrpc,
                |name, reason| Error::PluginDown {
                    name: name.to_owned(),
                    reason,
                },
            )
            .await;
        let (dispenser, generation) = match routed {
            Ok(routed) => routed,
            Err(error) => {
                self.shared.finished(None, false, started.elapsed());
                return Err(error);
            }
        };
        let result = match self.client(generation, dispenser).await {
            Ok(client) => client.call_value(service_method, ty, body).await,
            Err(error) => Err(error),
        };
        self.shared
            .finished(Some(generation), result.is_ok(), started.elapsed());
        result
    }
}

impl RpcRoute for NetRpcRoute {
    fn call_value<'a>(
        &'a self,
        service_method: &'a str,
        ty: &'a Type,
        body: &'a Value,
    ) -> BoxFuture<'a, Result<Body>> {
        Box::pin(self.call(service_method, ty, body))
    }
}
