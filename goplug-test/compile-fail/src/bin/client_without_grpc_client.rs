// A handle for a generated client that `grpc_client!` was never invoked for.
use goplug::host::{Channel, GrpcPlugin};
use tonic_health::pb::health_client::HealthClient;

const HEALTH: GrpcPlugin<HealthClient<Channel>> = GrpcPlugin::new("health");

fn main() {
    let _ = HEALTH;
}
