//! The [`Provider`] trait: a provider's own configuration.

use std::future::Future;

use crate::cty::Value;
use crate::diagnostics::Diagnostics;
use crate::schema::Schema;

/// A provider: the schema of its `provider` block, and what to do with
/// it. Resources and data sources are registered next to it on a
/// [`ProviderServer`](crate::ProviderServer); share configuration with
/// them through a handle both hold (say an `Arc` of a `RwLock`).
pub trait Provider: Send + Sync + 'static {
    /// The schema of the `provider` block (default: empty).
    fn schema(&self) -> Schema {
        Schema::new()
    }

    /// Checks the configuration, which may hold unknown values (default:
    /// accept).
    fn validate(&self, config: &Value) -> impl Future<Output = Diagnostics> + Send {
        let _ = config;
        async { Diagnostics::new() }
    }

    /// Takes the configuration before any resource operation. It is sent
    /// even when there is no `provider` block: every attribute is then
    /// null.
    fn configure(&self, request: ConfigureRequest<'_>) -> impl Future<Output = Diagnostics> + Send;

    /// The host was interrupted (Ctrl-C): stop long-running work soon
    /// (default: nothing to stop). An error is shown to the user.
    fn stop(&self) -> impl Future<Output = Result<(), String>> + Send {
        async { Ok(()) }
    }
}

/// What [`Provider::configure`] gets.
#[derive(Debug)]
#[non_exhaustive]
pub struct ConfigureRequest<'a> {
    /// The `provider` block's value (an object of the schema's type).
    pub config: &'a Value,
    /// The host's version, e.g. `1.6.3`.
    pub terraform_version: &'a str,
}
