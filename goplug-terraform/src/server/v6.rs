//! Protocol 6 (`tfplugin6.Provider`).

use std::sync::Arc;

use super::core::Core;
use super::wire::{conversions, provider_service};

conversions!(crate::tfplugin6);

/// The `tfplugin6.Provider` service over a provider.
#[derive(Clone)]
pub(crate) struct V6(pub(crate) Arc<Core>);

fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities::default()
}

provider_service! {
    service: V6,
        get_schema: get_provider_schema,
        validate_resource: validate_resource_config,
        validate_data_source: validate_data_resource_config,
        configure: configure_provider,
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
        validate_state_store_config,
        configure_state_store,
        lock_state,
        unlock_state,
        get_states,
        delete_state,
    ],
    streams: [
        list_resource: ListResourceStream of pb::list_resource::Event,
        invoke_action: InvokeActionStream of pb::invoke_action::Event,
        read_state_bytes: ReadStateBytesStream of pb::read_state_bytes::ResponseChunk,
    ],
    extra: {

    async fn validate_provider_config(
        &self,
        request: tonic::Request<pb::validate_provider_config::Request>,
    ) -> Result<tonic::Response<pb::validate_provider_config::Response>, tonic::Status> {
        let request = request.into_inner();
        let diags = self.0.validate_provider(&encoded(request.config)).await;
        Ok(tonic::Response::new(pb::validate_provider_config::Response {
            diagnostics: diagnostics(diags),
        }))
    }

    async fn stop_provider(
        &self,
        _: tonic::Request<pb::stop_provider::Request>,
    ) -> Result<tonic::Response<pb::stop_provider::Response>, tonic::Status> {
        Ok(tonic::Response::new(pb::stop_provider::Response {
            error: self.0.stop().await,
        }))
    }



    async fn write_state_bytes(
        &self,
        _: tonic::Request<tonic::Streaming<pb::write_state_bytes::RequestChunk>>,
    ) -> Result<tonic::Response<pb::write_state_bytes::Response>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "write_state_bytes is not implemented by this provider",
        ))
    }

    }
}
