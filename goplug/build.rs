//! Compiles go-plugin's internal protos (package `plugin`) and Vault's
//! plugin version service (package `logical`) with protox, so no system
//! `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/grpc_controller.proto",
        "proto/grpc_stdio.proto",
        "proto/grpc_broker.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    // Served by the plugin's reflection service, as go-plugin's Go plugins do.
    std::fs::write(
        out.join("plugin_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure().compile_fds(fds)?;

    // A set of its own: reflection lists it only when a plugin serves it.
    let version = "proto/logical/version.proto";
    println!("cargo:rerun-if-changed={version}");
    let fds = protox::compile([version], ["proto"])?;
    std::fs::write(
        out.join("logical_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
