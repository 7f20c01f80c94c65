//! Compiles `proto/kv.proto` (package `proto`, as in go-plugin's example).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/kv.proto");
    let fds = protox::compile(["proto/kv.proto"], ["proto"])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
