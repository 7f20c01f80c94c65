//! Compiles `proto/streamer.proto` (package `proto`, as in go-plugin's example).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/streamer.proto");
    let fds = protox::compile(["proto/streamer.proto"], ["proto"])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
