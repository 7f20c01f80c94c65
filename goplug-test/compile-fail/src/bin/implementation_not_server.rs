// The implementation passed where the generated server belongs.
use goplug::plugin::Services;
use tonic_health::pb::health_server::Health;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

#[derive(Clone)]
struct MyHealth;

#[tonic::async_trait]
impl Health for MyHealth {
    async fn check(
        &self,
        _: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("no"))
    }
    type WatchStream = tokio_stream_alias::Empty;
    async fn watch(
        &self,
        _: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("no"))
    }
}

mod tokio_stream_alias {
    pub type Empty = std::pin::Pin<
        Box<dyn tonic::codegen::tokio_stream::Stream<Item = Result<tonic_health::pb::HealthCheckResponse, tonic::Status>> + Send>,
    >;
}

fn main() {
    let _ = Services::new().grpc("health", MyHealth);
}
