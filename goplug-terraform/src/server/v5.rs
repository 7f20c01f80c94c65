//! Protocol 5 (`tfplugin5.Provider`).

use std::sync::Arc;

use super::core::Core;
use super::wire::{conversions, provider_service};

conversions!(crate::tfplugin5);

/// The `tfplugin5.Provider` service over a provider.
#[derive(Clone)]
pub(crate) struct V5(pub(crate) Arc<Core>);

fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities::default()
}

provider_service! {
    service: V5,
        get_schema: get_schema,
        validate_resource: validate_resource_type_config,
        validate_data_source: validate_data_source_config,
        configure: configure,
    unimplemented: [
        upgrade_resource_identity,
        move_resource_state,
        generate_resource_config,
        validate_ephemeral_resource_config,
        open_ephemeral_resource,
        renew_ephemeral_resource,
        close_ephemeral_resource,
        validate_list_resource_config,
        call_function,
        validate_action_config,
        plan_action,
    ],
    streams: [
        list_resource: ListResourceStream of pb::list_resource::Event,
        invoke_action: InvokeActionStream of pb::invoke_action::Event,
    ],
    extra: {

    /// Protocol 5's validation may return a changed configuration; this
    /// one is returned as it came.
    async fn prepare_provider_config(
        &self,
        request: tonic::Request<pb::prepare_provider_config::Request>,
    ) -> Result<tonic::Response<pb::prepare_provider_config::Response>, tonic::Status> {
        let request = request.into_inner();
        let config = encoded(request.config.clone());
        let diags = self.0.validate_provider(&config).await;
        Ok(tonic::Response::new(pb::prepare_provider_config::Response {
            prepared_config: request.config,
            diagnostics: diagnostics(diags),
        }))
    }

    async fn stop(
        &self,
        _: tonic::Request<pb::stop::Request>,
    ) -> Result<tonic::Response<pb::stop::Response>, tonic::Status> {
        Ok(tonic::Response::new(pb::stop::Response {
            error: self.0.stop().await,
        }))
    }

    }
}
