//! The [`DataSource`] trait.

use std::future::Future;

use crate::cty::Value;
use crate::diagnostics::Diagnostics;
use crate::schema::Schema;

/// A data source: reads something, given its configuration.
pub trait DataSource: Send + Sync + 'static {
    /// The data source's schema.
    fn schema(&self) -> Schema;

    /// Checks a configuration, which may hold unknown values (default:
    /// accept).
    fn validate(&self, config: &Value) -> impl Future<Output = Diagnostics> + Send {
        let _ = config;
        async { Diagnostics::new() }
    }

    /// Reads: returns the configuration with the computed attributes
    /// filled in.
    fn read(&self, config: &Value) -> impl Future<Output = Result<Value, Diagnostics>> + Send;
}
