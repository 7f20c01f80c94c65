//! Compiles Terraform's plugin protocols 5 and 6 (clients and servers)
//! with protox, so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    for (package, proto) in [
        ("tfplugin5", "proto/tfplugin5.proto"),
        ("tfplugin6", "proto/tfplugin6.proto"),
    ] {
        println!("cargo:rerun-if-changed={proto}");
        let fds = protox::compile([proto], ["proto"])?;
        // Served by the provider's reflection service.
        std::fs::write(
            out.join(format!("{package}_descriptor.bin")),
            prost::Message::encode_to_vec(&fds),
        )?;
        tonic_prost_build::configure().compile_fds(fds)?;
    }
    Ok(())
}
