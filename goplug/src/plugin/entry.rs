//! The ways to start serving: from a synchronous `main` ([`run`],
//! [`run_debug`]), inside a runtime ([`serve`], [`serve_debug`]), or in the
//! host's own process for tests (`serve_in_process`).

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

#[cfg(feature = "host")]
use tokio_util::sync::CancellationToken;

use super::config::{Runtime, ServeConfig};
use super::process::{write_stderr, write_stdout_line};
use super::serving::{Mode, serve_with};
use crate::error::{Error, Result};
#[cfg(feature = "host")]
use crate::protocol::handshake::PluginAddress;
use crate::protocol::reattach::ReattachConfig;

/// Serves the plugin from a synchronous `main` and turns the outcome into
/// the exit code go-plugin plugins have: 0 after a shutdown, 1 on error.
///
/// Errors are written to stderr (go-plugin's own texts for a missing cookie).
///
/// Inside a tokio runtime (an async `main`), await [`serve`] instead: `run`
/// then fails with [`Error::RunInsideRuntime`] on stderr.
pub fn run(config: ServeConfig) -> ExitCode {
    let flavour = config.runtime;
    run_in_runtime(("run", "serve(config).await"), flavour, serve(config))
}

/// Builds a runtime and serves on it. `names` are the entry point and what
/// to call instead inside a runtime, for the error.
fn run_in_runtime(
    names: (&'static str, &'static str),
    flavour: Runtime,
    serving: impl Future<Output = Result<()>>,
) -> ExitCode {
    // tokio would panic in `block_on` with a message about its internals.
    if let Err(e) = refuse_inside_runtime(names.0, names.1) {
        write_stderr(&format!("goplug: {e}\n"));
        return ExitCode::FAILURE;
    }
    let mut builder = match flavour {
        Runtime::MultiThread => tokio::runtime::Builder::new_multi_thread(),
        Runtime::CurrentThread => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            write_stderr(&format!("goplug: failed to start the async runtime: {e}\n"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serving);
    // Tasks still blocked on I/O must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Their own message is on stderr already.
        Err(
            Error::NotLaunchedByHost { .. }
            | Error::CookieMismatch { .. }
            | Error::MisconfiguredCookie,
        ) => ExitCode::FAILURE,
        Err(e) => {
            write_stderr(&format!("goplug: plugin failed: {e}\n"));
            ExitCode::FAILURE
        }
    }
}

/// Fails when the calling thread is inside a tokio runtime, where `function`
/// cannot block on a runtime of its own.
fn refuse_inside_runtime(function: &'static str, instead: &'static str) -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::RunInsideRuntime { function, instead });
    }
    Ok(())
}

/// Serves the plugin until the host asks it to stop (or the config's
/// shutdown signal fires). See the [module docs](super).
///
/// # Errors
///
/// [`Error::NotLaunchedByHost`] when the magic cookie is not set (go-plugin's
/// message has then been printed on stderr and nothing on stdout),
/// [`Error::CookieMismatch`] when it is set to another value (a message
/// naming the variable is on stderr), [`Error::MisconfiguredCookie`], [`Error::Config`] when no plugin set was
/// given, listener and server errors.
///
/// # Cancel safety
///
/// Dropping the future stops serving and removes the socket.
pub async fn serve(config: ServeConfig) -> Result<()> {
    serve_with(config, Mode::Launched).await
}

/// Serves the plugin in debug mode (go-plugin's `ServeTestConfig`), for a
/// plugin started by hand, say under a debugger: no magic cookie is
/// needed, nothing is printed on stdout, and `ready` receives the
/// [`ReattachConfig`] a host attaches with (test mode: the host never stops
/// it). SIGINT and SIGTERM stop it, as does the config's shutdown signal.
///
/// # Errors
///
/// As [`serve`], without the cookie errors.
pub async fn serve_debug(
    config: ServeConfig,
    ready: impl FnOnce(ReattachConfig) + Send + 'static,
) -> Result<()> {
    serve_with(config, Mode::Debug(Box::new(ready))).await
}

/// Runs [`serve_debug`] from a synchronous `main`: prints the reattach
/// config as one JSON line on stdout (the per-plugin object of Terraform's
/// `TF_REATTACH_PROVIDERS`) and serves until interrupted. Exit code 0
/// after a clean stop, 1 on error.
pub fn run_debug(config: ServeConfig) -> ExitCode {
    let flavour = config.runtime;
    run_in_runtime(
        ("run_debug", "serve_debug(config, ready).await"),
        flavour,
        serve_debug(config, |reattach| {
            if let Err(e) = write_stdout_line(&reattach.to_json()) {
                write_stderr(&format!("goplug: {e}\n"));
            }
        }),
    )
}

/// Serves inside the host's own process, for tests
/// ([`testing::connect`](crate::testing::connect)): no cookie, no stdout,
/// no signal handlers; `ready` gets the address and version; serving stops
/// when `stop` is cancelled or the host asks.
#[cfg(feature = "host")]
pub(crate) async fn serve_in_process(
    config: ServeConfig,
    ready: impl FnOnce(PluginAddress, u32) + Send + 'static,
    stop: CancellationToken,
) -> Result<()> {
    serve_with(
        config,
        Mode::InProcess {
            ready: Box::new(ready),
            stop,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::HandshakeConfig;

    #[tokio::test]
    async fn run_inside_a_runtime_names_serve_instead() {
        let e = refuse_inside_runtime("run", "serve(config).await").unwrap_err();
        assert!(
            matches!(
                e,
                Error::RunInsideRuntime {
                    function: "run",
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "`goplug::plugin::run` was called inside a tokio runtime, which cannot start another; \
             inside an async main (`#[tokio::main]`), use `goplug::plugin::serve(config).await` instead"
        );
        // No tokio panic: a failure exit, the message on stderr.
        let config = ServeConfig::new(HandshakeConfig::new(1, "GOPLUG_UNIT_COOKIE", "v"));
        assert_eq!(run(config), ExitCode::FAILURE);
    }

    #[test]
    fn run_outside_a_runtime_is_allowed() {
        assert!(refuse_inside_runtime("run", "serve(config).await").is_ok());
    }
}
