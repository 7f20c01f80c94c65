// A checksum cannot apply to a plugin the host did not launch.
use goplug::host::{Checksum, Client};
use goplug::reattach::ReattachConfig;

fn build(config: ReattachConfig) {
    let handshake = goplug::HandshakeConfig::new(1, "KEY", "value");
    let _ = Client::builder(handshake)
        .reattach(config)
        .checksum(Checksum::of_bytes(b"plugin"));
}

fn main() {
    let _ = build;
}
