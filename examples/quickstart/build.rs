//! Generates the tonic client and server of `proto/text.proto`. protox
//! compiles the proto in Rust, so no `protoc` needs to be installed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/text.proto");
    let descriptors = protox::compile(["proto/text.proto"], ["proto"])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
