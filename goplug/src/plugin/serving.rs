//! What go-plugin's `plugin.Serve` does, in four phases: [`negotiate`] the
//! plugin set, [`bind`] everything that can fail, [`announce`] the address,
//! [`serve`] until shutdown. The handshake goes out only once nothing but
//! serving itself can fail.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::config::ServeConfig;
use super::process::{watch_signals, write_stderr, write_stdout_line};
use super::routes::{build_routes, check_cookie};
use super::services::Services;
use super::tls::{TlsSetup, tls_setup};
use super::transports::{Serving, serve_multiplexed, serve_netrpc};
use super::{builtin, parent};
use crate::error::{Error, Result};
use crate::grpc::broker::GrpcBroker;
use crate::protocol::env;
use crate::protocol::handshake::{HandshakeLine, PluginAddress, Protocol, parse_go_bool};
use crate::protocol::reattach::ReattachConfig;
use crate::transport::listen::BoundListener;
use crate::transport::mux::Muxer;
use crate::transport::serve::serve_listener;

/// How the plugin was started.
pub(super) enum Mode {
    /// By a host, through the handshake.
    Launched,
    /// By hand, for a host to reattach to.
    Debug(Box<dyn FnOnce(ReattachConfig) + Send>),
    /// In the host's process.
    #[cfg_attr(
        not(feature = "host"),
        expect(dead_code, reason = "for goplug::testing")
    )]
    InProcess {
        ready: Box<dyn FnOnce(PluginAddress, u32) + Send>,
        stop: CancellationToken,
    },
}

impl Mode {
    fn launched(&self) -> bool {
        matches!(self, Self::Launched)
    }

    fn in_process(&self) -> bool {
        matches!(self, Self::InProcess { .. })
    }
}

/// The app protocol version agreed on, and what is served at it.
struct Agreed {
    version: u32,
    plugins: Services,
    protocol: Protocol,
}

/// Everything set up before the handshake.
struct Bound {
    listener: BoundListener,
    address: PluginAddress,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Field 6 of the handshake line.
    server_cert: Option<String>,
    shutdown: CancellationToken,
    redirect: Option<builtin::StdoutRedirect>,
    serving: Serving,
    /// Serve gRPC over one yamux session.
    multiplex: bool,
    /// Say `|true` in the handshake's multiplex field.
    announce_multiplex: bool,
    mux_tx: watch::Sender<Option<Arc<Muxer>>>,
    /// Kept until serving ends.
    _signals: Option<tokio::task::JoinHandle<()>>,
    _host_watch: Option<Option<tokio::task::JoinHandle<()>>>,
}

/// Serves `config` as `mode` asks, one phase after the other.
pub(super) async fn serve_with(config: ServeConfig, mode: Mode) -> Result<()> {
    let starting = start(config, mode);
    #[cfg(feature = "otel")]
    let starting = tracing::Instrument::instrument(starting, super::trace::start_span());
    serve(starting.await?).await
}

/// Everything up to the handshake line: negotiate, bind, announce.
async fn start(mut config: ServeConfig, mode: Mode) -> Result<Bound> {
    let agreed = negotiate(&mut config, &mode)?;
    // Flags, not `&mode`: the mode's callbacks are not `Sync`.
    let (launched, in_process) = (mode.launched(), mode.in_process());
    let mut bound = bind(
        config,
        agreed.plugins,
        agreed.protocol,
        launched,
        in_process,
    )
    .await?;
    announce(mode, &mut bound, agreed.version, agreed.protocol)?;
    Ok(bound)
}

/// Checks the magic cookie (launched plugins only) and picks the plugin set
/// of the highest app protocol version both sides have.
fn negotiate(config: &mut ServeConfig, mode: &Mode) -> Result<Agreed> {
    let launched = mode.launched();
    if launched {
        check_cookie(&config.handshake)?;
    }

    let plugin_versions: Vec<u32> = config.versions.keys().copied().collect();
    let offer = std::env::var(env::PLUGIN_PROTOCOL_VERSIONS).ok();
    let negotiated = crate::protocol::handshake::negotiate(offer.as_deref(), &plugin_versions)
        .ok_or_else(|| Error::Config("no plugin set was given to serve".to_owned()))?;
    for entry in &negotiated.invalid {
        tracing::warn!("server sent invalid plugin version {entry:?}");
    }
    // A debug-mode plugin started by hand has no offer to disagree with.
    if !negotiated.matched && (launched || offer.is_some()) {
        // On stderr so the host can show both sides' versions; the `[WARN]`
        // prefix makes a go-plugin host log it at warn level.
        write_stderr(&format!(
            "[WARN]  plugin: no common app protocol version: host offered [{}], plugin supports [{}]; announcing {}\n",
            offer.as_deref().unwrap_or("").replace(',', " "),
            plugin_versions
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            negotiated.version
        ));
    }
    let plugins = config
        .versions
        .remove(&negotiated.version)
        .unwrap_or_default();
    if plugins.is_empty() {
        // Serving only goplug's own services is legal, but every call the
        // host makes would then fail with "unknown service".
        tracing::warn!(
            "the plugin serves no plugin services: the plugin set of app protocol version {} is empty; add your services with Services::grpc or Services::netrpc",
            negotiated.version
        );
    }
    let protocol = plugins.protocol()?;
    if mode.in_process() && protocol == Protocol::NetRpc {
        return Err(Error::Config(
            "in-process plugins serve gRPC; this plugin set is net/rpc".to_owned(),
        ));
    }
    Ok(Agreed {
        version: negotiated.version,
        plugins,
        protocol,
    })
}

/// Sets up TLS, the listener, stdout capture, the broker, the routes and
/// the signal handlers: everything that can fail before serving.
async fn bind(
    config: ServeConfig,
    plugins: Services,
    protocol: Protocol,
    launched: bool,
    in_process: bool,
) -> Result<Bound> {
    let ServeConfig {
        handshake: _,
        versions: _,
        transport,
        descriptor_sets,
        shutdown_signal,
        tls,
        max_tls_version,
        cert_curve,
        exit_with_host,
        runtime: _,
        plugin_version,
    } = config;
    let version_service = super::version::service(plugin_version, protocol)?;

    let TlsSetup {
        server: tls,
        handshake_cert: server_cert,
        broker: broker_tls,
    } = tls_setup(tls, max_tls_version, cert_curve)?;
    let listener = BoundListener::bind(transport).await?;
    let address = listener.address()?;
    let shutdown = CancellationToken::new();
    // In debug mode stdout is the developer's terminal: left alone.
    let (stdout, redirect) = match launched.then(|| builtin::capture_stdout(shutdown.clone())) {
        Some(Ok((stdout, redirect))) => (Some(stdout), Some(redirect)),
        Some(Err(e)) => {
            tracing::warn!("stdout will not be synced to the host: {e}");
            (None, None)
        }
        None => (None, None),
    };
    let socket_base = crate::transport::listen::socket_location()?;
    let (broker_tx, broker_rx) = mpsc::channel(16);
    // go-plugin's asymmetry: any non-empty PLUGIN_MULTIPLEX_GRPC gets
    // `|true` in the handshake, only a Go boolean true turns muxing on.
    let multiplex_env = std::env::var(env::PLUGIN_MULTIPLEX_GRPC).unwrap_or_default();
    let announce_multiplex = launched && !multiplex_env.is_empty();
    let multiplex = launched && parse_go_bool(&multiplex_env) == Some(true);
    let (mux_tx, mux_rx) = watch::channel(None);
    let broker = GrpcBroker::new(broker_tx, socket_base, broker_tls, shutdown.clone())
        .with_mux((multiplex && protocol == Protocol::Grpc).then_some(mux_rx));
    let serving = match protocol {
        Protocol::NetRpc => Serving::NetRpc((
            Arc::new(plugins.netrpc.into_iter().collect()),
            Arc::new(tokio::sync::Mutex::new(stdout)),
        )),
        Protocol::Grpc => Serving::Grpc(
            build_routes(
                plugins,
                &descriptor_sets,
                &shutdown,
                stdout,
                (broker, broker_rx),
                version_service,
            )
            .await?,
        ),
    };

    // Before the handshake: a Ctrl-C in the host's terminal reaches every
    // process of the foreground group, and the host owns plugin shutdown.
    // In the host's process the signals are the host's.
    let signals = if in_process {
        None
    } else {
        Some(watch_signals(shutdown.clone(), launched)?)
    };
    let keep_running = std::env::var_os(env::GOPLUG_KEEP_RUNNING).is_some_and(|v| v == "1");
    let host_watch =
        (launched && exit_with_host && !keep_running).then(|| parent::watch_host(shutdown.clone()));
    if let Some(signal) = shutdown_signal {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = signal => shutdown.cancel(),
                () = shutdown.cancelled() => {}
            }
        });
    }

    Ok(Bound {
        listener,
        address,
        tls,
        server_cert,
        shutdown,
        redirect,
        serving,
        multiplex,
        announce_multiplex,
        mux_tx,
        _signals: signals,
        _host_watch: host_watch,
    })
}

/// Tells whoever started the plugin where it listens: the handshake line on
/// stdout, the reattach config, or the in-process callback. Then stdout
/// goes to the host.
fn announce(mode: Mode, bound: &mut Bound, version: u32, protocol: Protocol) -> Result<()> {
    let address = &bound.address;
    match mode {
        Mode::Launched => {
            let line = HandshakeLine {
                server_cert: bound.server_cert.take(),
                multiplex: bound.announce_multiplex.then(|| "true".to_owned()),
                ..HandshakeLine::new(version, address.clone(), protocol)
            };
            write_stdout_line(&line.to_string())?;
        }
        Mode::InProcess { ready, stop } => {
            let shutdown = bound.shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = stop.cancelled() => shutdown.cancel(),
                    () = shutdown.cancelled() => {}
                }
            });
            ready(address.clone(), version);
        }
        Mode::Debug(ready) => ready(
            ReattachConfig::new(protocol, version, address.clone(), std::process::id()).test(true),
        ),
    }
    // From here on, what the plugin prints travels through GRPCStdio, as a
    // Go plugin's os.Stdout does.
    if let Some(Err(e)) = bound.redirect.take().map(builtin::StdoutRedirect::apply) {
        tracing::warn!("stdout will not be synced to the host: {e}");
    }
    tracing::debug!(%address, "plugin address");
    Ok(())
}

/// Serves until shutdown, then cancels whatever still waits on it.
async fn serve(bound: Bound) -> Result<()> {
    let Bound {
        listener,
        tls,
        shutdown,
        serving,
        multiplex,
        mux_tx,
        ..
    } = bound;
    let result = match serving {
        Serving::NetRpc(netrpc) => serve_netrpc(listener, tls, netrpc, &shutdown).await,
        Serving::Grpc(routes) => {
            let server = crate::transport::serve::server_builder().add_routes(routes);
            if multiplex {
                serve_multiplexed(server, listener, tls, &shutdown, mux_tx).await
            } else {
                serve_listener(server, listener, tls, &shutdown).await
            }
        }
    };
    shutdown.cancel();
    result
}
