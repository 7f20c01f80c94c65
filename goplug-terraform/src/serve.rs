//! Serving a provider to Terraform or OpenTofu: launched by the host
//! (go-plugin handshake, cookie, version negotiation, AutoMTLS) or started
//! by hand in debug mode for a host to reattach to.

use std::io::Write as _;
use std::process::ExitCode;

use goplug::plugin::{self, ServeConfig, Services};
use goplug::reattach::ReattachConfig;

use crate::error::{Error, Result};
use crate::server::ProviderServer;
use crate::{HANDSHAKE, PROVIDER_PLUGIN_NAME};

/// How a provider binary was asked to run: `-debug` (also `--debug`,
/// `-debug=true`) means debug mode, as with the Go SDKs' providers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Launched by a host.
    Launched,
    /// Started by hand; prints the `TF_REATTACH_PROVIDERS` line.
    Debug,
}

impl Mode {
    /// The mode the arguments ask for (the program name excluded).
    pub fn from_args<I: IntoIterator<Item = S>, S: AsRef<str>>(args: I) -> Self {
        let debug = args.into_iter().any(|arg| {
            matches!(
                arg.as_ref(),
                "-debug" | "--debug" | "-debug=true" | "--debug=true"
            )
        });
        if debug { Self::Debug } else { Self::Launched }
    }
}

impl ProviderServer {
    /// goplug's serve config for this provider: Terraform's handshake,
    /// each protocol version's service, reflection descriptors. For
    /// serving with settings of your own (transport, TLS, runtime) through
    /// `goplug::plugin`, or in-process tests with `goplug::testing`.
    pub fn into_serve_config(self) -> ServeConfig {
        serve_config(self)
    }
}

fn serve_config(server: ProviderServer) -> ServeConfig {
    let services = server.into_services();
    let mut config = ServeConfig::new(HANDSHAKE);
    if let Some(v5) = services.v5 {
        config = config
            .version(5, Services::new().grpc(PROVIDER_PLUGIN_NAME, v5))
            .file_descriptor_set(crate::tfplugin5::FILE_DESCRIPTOR_SET);
    }
    if let Some(v6) = services.v6 {
        config = config
            .version(6, Services::new().grpc(PROVIDER_PLUGIN_NAME, v6))
            .file_descriptor_set(crate::tfplugin6::FILE_DESCRIPTOR_SET);
    }
    config
}

/// Serves the provider to the host that launched it, until the host
/// shuts it down.
///
/// # Errors
///
/// [`Error::Serve`]: not launched by a host (no cookie; go-plugin's message
/// is on stderr), listener or server errors.
pub async fn serve(server: ProviderServer) -> Result<()> {
    plugin::serve(serve_config(server))
        .await
        .map_err(Error::from)
}

/// Serves in debug mode: no cookie needed; `ready` gets the value of
/// `TF_REATTACH_PROVIDERS` for provider address `address` (such as
/// `registry.terraform.io/example/goplug`), with `"Test": true` so that
/// hosts pick the protocol version served and never stop the provider.
/// Serves until SIGINT or SIGTERM.
///
/// # Errors
///
/// As [`serve`], without the cookie errors.
pub async fn serve_debug(
    server: ProviderServer,
    address: &str,
    ready: impl FnOnce(String) + Send + 'static,
) -> Result<()> {
    let address = address.to_owned();
    // No host offers versions to pick from: serve the highest one, as the
    // Go SDKs' debug mode serves the one version they are built for.
    let highest = server.versions().iter().copied().max();
    let server = server.protocol_versions(highest);
    plugin::serve_debug(serve_config(server), move |config: ReattachConfig| {
        ready(ReattachConfig::map_to_json([(address.as_str(), &config)]));
    })
    .await
    .map_err(Error::from)
}

/// What a provider's `main` calls: reads `-debug` from the command line,
/// builds a runtime and serves ([`serve`] or [`serve_debug`]). In debug
/// mode it prints, as the Go SDKs do, the line to paste into a shell:
/// `TF_REATTACH_PROVIDERS='{...}'`. Exit code 0 after a clean stop, 1 on
/// error (the error on stderr).
pub fn run(server: ProviderServer, address: &str) -> ExitCode {
    goplug::log::init_with(&log_level(
        std::env::var("TF_LOG_PROVIDER")
            .or_else(|_| std::env::var("TF_LOG"))
            .ok()
            .as_deref(),
    ));
    let mode = Mode::from_args(std::env::args().skip(1));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match mode {
            Mode::Launched => serve(server).await,
            Mode::Debug => serve_debug(server, address, announce).await,
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // go-plugin's own message is on stderr already.
        Err(Error::Serve(goplug::Error::NotLaunchedByHost { .. })) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// The log level the host's `TF_LOG_PROVIDER` (or `TF_LOG`) asks for, as
/// the Go SDKs read it; `warn` when unset.
fn log_level(tf_log: Option<&str>) -> String {
    match tf_log.map(str::to_ascii_lowercase).as_deref() {
        Some("trace" | "json") => "trace",
        Some("debug") => "debug",
        Some("info") => "info",
        Some("error") => "error",
        _ => "warn",
    }
    .to_owned()
}

/// The reattach line for a shell, quoted as the Go SDKs quote it.
pub fn reattach_line(providers_json: &str) -> String {
    format!(
        "TF_REATTACH_PROVIDERS='{}'",
        providers_json.replace('\'', r#"'"'"'"#)
    )
}

/// Debug mode's announcement. In debug mode stdout is the developer's
/// terminal, not a handshake channel (goplug's `run_debug` writes there
/// too): this is the crate's one stdout write.
#[allow(clippy::disallowed_methods)]
fn announce(providers_json: String) {
    let text = format!(
        "Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment variable with the following:\n\n\t{}\n\n",
        reattach_line(&providers_json)
    );
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        eprintln!("{}", reattach_line(&providers_json));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_debug_flag_is_read_as_go_flags_read_it() {
        let cases: &[(&[&str], Mode)] = &[
            (&[], Mode::Launched),
            (&["-debug"], Mode::Debug),
            (&["--debug"], Mode::Debug),
            (&["-debug=true"], Mode::Debug),
            (&["-debug=false"], Mode::Launched),
            (&["debug"], Mode::Launched),
        ];
        for (args, mode) in cases {
            assert_eq!(Mode::from_args(args.iter()), *mode, "{args:?}");
        }
    }

    #[test]
    fn tf_log_sets_the_level() {
        let cases = [
            (None, "warn"),
            (Some("TRACE"), "trace"),
            (Some("json"), "trace"),
            (Some("DEBUG"), "debug"),
            (Some("info"), "info"),
            (Some("ERROR"), "error"),
            (Some("off"), "warn"),
        ];
        for (tf_log, level) in cases {
            assert_eq!(log_level(tf_log), level, "{tf_log:?}");
        }
    }

    #[test]
    fn the_reattach_line_quotes_for_a_posix_shell() {
        assert_eq!(
            reattach_line(r#"{"a":1}"#),
            r#"TF_REATTACH_PROVIDERS='{"a":1}'"#
        );
        assert_eq!(reattach_line("it's"), r#"TF_REATTACH_PROVIDERS='it'"'"'s'"#);
    }
}
