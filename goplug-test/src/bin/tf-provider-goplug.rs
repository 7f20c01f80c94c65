//! The example Terraform provider (`examples/terraform-provider-goplug`)
//! as a binary of this crate, so `tests/tf_host` launches it as a process.
//! `TF_PROVIDER_PROTOCOL=5` (or `6`) serves only that protocol version.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut server = terraform_provider_goplug::server();
    if let Some(version) = std::env::var("TF_PROVIDER_PROTOCOL")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        server = server.protocol_versions([version]);
    }
    goplug_terraform::run(server, terraform_provider_goplug::ADDRESS)
}
