//! The [`Resource`] trait (managed resources) and what its methods get.

use std::future::Future;

use crate::cty::{AttributePath, Value};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::schema::Schema;

/// A managed resource type: create, read, update, delete, and optionally
/// import and state upgrades. Values are objects of the schema's type
/// (attributes the returned object lacks are written as null).
///
/// Planning is done for you: the planned state is the configuration with
/// computed attributes the configuration leaves null kept from the prior
/// state when nothing changed and unknown otherwise, and a change of an
/// attribute marked [`requires_replace`](crate::schema::Attribute::requires_replace)
/// replaces the resource. [`modify_plan`](Self::modify_plan) adjusts it.
pub trait Resource: Send + Sync + 'static {
    /// The resource's schema.
    fn schema(&self) -> Schema;

    /// Checks a configuration, which may hold unknown values (default:
    /// accept).
    fn validate(&self, config: &Value) -> impl Future<Output = Diagnostics> + Send {
        let _ = config;
        async { Diagnostics::new() }
    }

    /// Adjusts the plan worked out for a create or update (default: as
    /// is): set computed values known in advance, add paths to
    /// `requires_replace`.
    fn modify_plan(
        &self,
        request: PlanRequest<'_>,
        plan: &mut Plan,
    ) -> impl Future<Output = Diagnostics> + Send {
        let _ = (request, plan);
        async { Diagnostics::new() }
    }

    /// Creates the object; returns the new state, every value known.
    fn create(
        &self,
        request: ChangeRequest<'_>,
    ) -> impl Future<Output = Result<Value, Diagnostics>> + Send;

    /// Reads the object back: `None` when it no longer exists (the host
    /// then plans to create it again), else its state as it is now (a
    /// difference from the configuration is drift the host plans to fix).
    fn read(
        &self,
        state: &Value,
    ) -> impl Future<Output = Result<Option<Value>, Diagnostics>> + Send;

    /// Updates the object in place; returns the new state.
    fn update(
        &self,
        request: ChangeRequest<'_>,
    ) -> impl Future<Output = Result<Value, Diagnostics>> + Send;

    /// Deletes the object.
    fn delete(&self, state: &Value) -> impl Future<Output = Result<(), Diagnostics>> + Send;

    /// The state `terraform import` starts from, given the user's ID; the
    /// host reads it next (default: import is not supported).
    fn import(&self, id: &str) -> impl Future<Output = Result<Value, Diagnostics>> + Send {
        let _ = id;
        async {
            Err(Diagnostic::error(
                "Resource import not supported",
                "This resource type cannot be imported.",
            )
            .into())
        }
    }

    /// Turns a state stored by schema version `version` (older than the
    /// schema's) into a value of the current schema. `json` is the state
    /// as stored (default: no upgrade is known: an error). A state of the
    /// current version never comes here.
    fn upgrade(
        &self,
        version: i64,
        json: &[u8],
    ) -> impl Future<Output = Result<Value, Diagnostics>> + Send {
        let _ = json;
        async move {
            Err(Diagnostic::error(
                "Unsupported state version",
                format!("The stored state has schema version {version}, which this provider cannot upgrade."),
            )
            .into())
        }
    }
}

/// The values a plan is worked out from.
#[derive(Debug)]
#[non_exhaustive]
pub struct PlanRequest<'a> {
    /// The state before: null when creating.
    pub prior_state: &'a Value,
    /// The configuration (unknown where it depends on other resources'
    /// unknown values).
    pub config: &'a Value,
}

/// A planned change, for [`Resource::modify_plan`] to adjust.
#[derive(Debug)]
#[non_exhaustive]
pub struct Plan {
    /// The state the change should lead to; unknown where apply decides.
    pub planned_state: Value,
    /// Attributes whose change replaces the resource.
    pub requires_replace: Vec<AttributePath>,
}

/// What [`Resource::create`] and [`Resource::update`] get.
#[derive(Debug)]
#[non_exhaustive]
pub struct ChangeRequest<'a> {
    /// The state before (null for a create).
    pub prior_state: &'a Value,
    /// The planned state: every value the plan made known must come back
    /// unchanged, and every unknown must be filled in.
    pub planned_state: &'a Value,
    /// The configuration, every value known.
    pub config: &'a Value,
}
