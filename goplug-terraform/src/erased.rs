//! Object-safe forms of the provider traits, so one server holds many
//! resource types: each method boxes the trait's future.

use std::future::Future;
use std::pin::Pin;

use crate::cty::Value;
use crate::data_source::DataSource;
use crate::diagnostics::Diagnostics;
use crate::provider::{ConfigureRequest, Provider};
use crate::resource::{ChangeRequest, Plan, PlanRequest, Resource};

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub(crate) trait DynProvider: Send + Sync {
    fn validate<'a>(&'a self, config: &'a Value) -> BoxFuture<'a, Diagnostics>;
    fn configure<'a>(&'a self, request: ConfigureRequest<'a>) -> BoxFuture<'a, Diagnostics>;
    fn stop(&self) -> BoxFuture<'_, Result<(), String>>;
}

impl<P: Provider> DynProvider for P {
    fn validate<'a>(&'a self, config: &'a Value) -> BoxFuture<'a, Diagnostics> {
        Box::pin(Provider::validate(self, config))
    }
    fn configure<'a>(&'a self, request: ConfigureRequest<'a>) -> BoxFuture<'a, Diagnostics> {
        Box::pin(Provider::configure(self, request))
    }
    fn stop(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(Provider::stop(self))
    }
}

pub(crate) trait DynResource: Send + Sync {
    fn validate<'a>(&'a self, config: &'a Value) -> BoxFuture<'a, Diagnostics>;
    fn modify_plan<'a>(
        &'a self,
        request: PlanRequest<'a>,
        plan: &'a mut Plan,
    ) -> BoxFuture<'a, Diagnostics>;
    fn create<'a>(
        &'a self,
        request: ChangeRequest<'a>,
    ) -> BoxFuture<'a, Result<Value, Diagnostics>>;
    fn read<'a>(&'a self, state: &'a Value) -> BoxFuture<'a, Result<Option<Value>, Diagnostics>>;
    fn update<'a>(
        &'a self,
        request: ChangeRequest<'a>,
    ) -> BoxFuture<'a, Result<Value, Diagnostics>>;
    fn delete<'a>(&'a self, state: &'a Value) -> BoxFuture<'a, Result<(), Diagnostics>>;
    fn import<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Value, Diagnostics>>;
    fn upgrade<'a>(
        &'a self,
        version: i64,
        json: &'a [u8],
    ) -> BoxFuture<'a, Result<Value, Diagnostics>>;
}

impl<R: Resource> DynResource for R {
    fn validate<'a>(&'a self, config: &'a Value) -> BoxFuture<'a, Diagnostics> {
        Box::pin(Resource::validate(self, config))
    }
    fn modify_plan<'a>(
        &'a self,
        request: PlanRequest<'a>,
        plan: &'a mut Plan,
    ) -> BoxFuture<'a, Diagnostics> {
        Box::pin(Resource::modify_plan(self, request, plan))
    }
    fn create<'a>(
        &'a self,
        request: ChangeRequest<'a>,
    ) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(Resource::create(self, request))
    }
    fn read<'a>(&'a self, state: &'a Value) -> BoxFuture<'a, Result<Option<Value>, Diagnostics>> {
        Box::pin(Resource::read(self, state))
    }
    fn update<'a>(
        &'a self,
        request: ChangeRequest<'a>,
    ) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(Resource::update(self, request))
    }
    fn delete<'a>(&'a self, state: &'a Value) -> BoxFuture<'a, Result<(), Diagnostics>> {
        Box::pin(Resource::delete(self, state))
    }
    fn import<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(Resource::import(self, id))
    }
    fn upgrade<'a>(
        &'a self,
        version: i64,
        json: &'a [u8],
    ) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(Resource::upgrade(self, version, json))
    }
}

pub(crate) trait DynDataSource: Send + Sync {
    fn validate<'a>(&'a self, config: &'a Value) -> BoxFuture<'a, Diagnostics>;
    fn read<'a>(&'a self, config: &'a Value) -> BoxFuture<'a, Result<Value, Diagnostics>>;
}

impl<D: DataSource> DynDataSource for D {
    fn validate<'a>(&'a self, config: &'a Value) -> BoxFuture<'a, Diagnostics> {
        Box::pin(DataSource::validate(self, config))
    }
    fn read<'a>(&'a self, config: &'a Value) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(DataSource::read(self, config))
    }
}
