//! `terraform-provider-goplug`: run by Terraform or OpenTofu, or by hand
//! with `-debug` to print a `TF_REATTACH_PROVIDERS` line.
//! `GOPLUG_PROVIDER_PROTOCOL=5` (or `6`) serves only that protocol version,
//! to try either under a real host (by default both; the host picks 6).

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut server = terraform_provider_goplug::server();
    if let Some(version) = std::env::var("GOPLUG_PROVIDER_PROTOCOL")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        server = server.protocol_versions([version]);
    }
    goplug_terraform::run(server, terraform_provider_goplug::ADDRESS)
}
