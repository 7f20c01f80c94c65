// A handle dispenses exactly its client type: anything else is a type error.
use goplug::host::{Channel, GrpcPlugin};
use tonic_health::pb::health_client::HealthClient;

const HEALTH: GrpcPlugin<HealthClient<Channel>> =
    GrpcPlugin::with_channel("health", HealthClient::new);

fn dispense(client: &goplug::host::Client) -> goplug::Result<String> {
    let text: String = client.dispense(HEALTH)?;
    Ok(text)
}

fn main() {
    let _ = dispense;
}
