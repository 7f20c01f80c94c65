//! Compiles `proto/bench.proto` (package `bench`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/bench.proto");
    let fds = protox::compile(["proto/bench.proto"], ["proto"])?;
    // `bytes` fields as `bytes::Bytes`: decoded without a copy out of the
    // receive buffer, and echoed back without one (go-plugin's Go side
    // aliases its buffers the same way).
    tonic_prost_build::configure()
        .bytes(".bench")
        .compile_fds(fds)?;
    Ok(())
}
