//! What the plugin's gRPC server serves: goplug's own services next to the
//! plugin set's, and the magic cookie checked before anything is served.

use std::ffi::OsStr;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::service::{Routes, RoutesBuilder};

use super::process::write_stderr;
use super::services::Services;
use super::version::PluginVersion;
use super::{builtin, reflection};
use crate::error::{Error, Result};
use crate::grpc::broker::GrpcBroker;
use crate::grpc::version::{self, pb::plugin_version_server::PluginVersionServer};
use crate::grpc::{HEALTH_SERVICE_NAME, PLUGIN_FILE_DESCRIPTOR_SET, pb};
use crate::protocol::env;
use crate::protocol::handshake::HandshakeConfig;

/// Fails, with a message on stderr, unless the host set the magic cookie:
/// go-plugin's text when the variable is absent (run by hand), goplug's
/// when it holds another value (a host with another handshake config).
pub(super) fn check_cookie(handshake: &HandshakeConfig) -> Result<()> {
    if handshake.magic_cookie_key.is_empty() || handshake.magic_cookie_value.is_empty() {
        write_stderr(env::MISCONFIGURED_COOKIE);
        return Err(Error::MisconfiguredCookie);
    }
    let key = handshake.magic_cookie_key.as_ref();
    match std::env::var_os(key) {
        Some(value) if value == OsStr::new(handshake.magic_cookie_value.as_ref()) => Ok(()),
        Some(_) => {
            write_stderr(&env::cookie_mismatch(key));
            Err(Error::CookieMismatch {
                key: key.to_owned(),
            })
        }
        None => {
            write_stderr(env::NOT_LAUNCHED_BY_HOST);
            Err(Error::NotLaunchedByHost {
                key: key.to_owned(),
            })
        }
    }
}

/// The gRPC service name of `service`.
fn name_of<S: NamedService>(_service: &S) -> &'static str {
    S::NAME
}

/// The routes of a gRPC plugin: health, reflection, controller, broker,
/// stdio and the version (when declared), then the plugin set's services.
pub(super) async fn build_routes(
    plugins: Services,
    descriptor_sets: &[&'static [u8]],
    shutdown: &CancellationToken,
    stdout: Option<mpsc::Receiver<pb::StdioData>>,
    (broker, broker_outgoing): (GrpcBroker, mpsc::Receiver<pb::ConnInfo>),
    version: Option<PluginVersionServer<PluginVersion>>,
) -> Result<Routes> {
    let mut routes = RoutesBuilder::default();
    // goplug's own services, by gRPC name.
    let mut taken = Vec::new();

    let (health_reporter, health) = tonic_health::server::health_reporter();
    // go-plugin hosts check the status of "plugin", not of the gRPC
    // service's own name.
    health_reporter
        .set_service_status(HEALTH_SERVICE_NAME, tonic_health::ServingStatus::Serving)
        .await;
    taken.push(name_of(&health));
    routes.add_service(health);

    let sets: Vec<&'static [u8]> = [
        PLUGIN_FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ]
    .into_iter()
    .chain(version.is_some().then_some(version::FILE_DESCRIPTOR_SET))
    .chain(descriptor_sets.iter().copied())
    .collect();
    let reflection = move || {
        sets.iter().fold(
            tonic_reflection::server::Builder::configure(),
            |builder, set| builder.register_encoded_file_descriptor_set(set),
        )
    };
    let v1 = reflection.clone();
    let v1 = reflection::Lazy::new(move || v1().build_v1().map_err(|e| e.to_string()));
    taken.push(name_of(&v1));
    routes.add_service(v1);
    let v1alpha =
        reflection::Lazy::new(move || reflection().build_v1alpha().map_err(|e| e.to_string()));
    taken.push(name_of(&v1alpha));
    routes.add_service(v1alpha);

    let controller = pb::grpc_controller_server::GrpcControllerServer::new(builtin::Controller {
        shutdown: shutdown.clone(),
    });
    taken.push(name_of(&controller));
    routes.add_service(controller);
    let broker_service = pb::grpc_broker_server::GrpcBrokerServer::new(builtin::Broker {
        broker: broker.clone(),
        outgoing: std::sync::Mutex::new(Some(broker_outgoing)),
    });
    taken.push(name_of(&broker_service));
    routes.add_service(broker_service);
    let stdio = pb::grpc_stdio_server::GrpcStdioServer::new(builtin::Stdio {
        shutdown: shutdown.clone(),
        output: std::sync::Mutex::new(stdout),
    });
    taken.push(name_of(&stdio));
    routes.add_service(stdio);
    if let Some(version) = version {
        taken.push(name_of(&version));
        routes.add_service(version);
    }

    // tonic panics on a service registered twice; say which instead.
    for (name, service, _) in &plugins.plugins {
        if taken.contains(service) {
            return Err(Error::Config(format!(
                "plugin {name:?} serves {service}, which another service of this plugin (or goplug itself) already serves"
            )));
        }
        taken.push(service);
    }
    for (_name, _service, add) in plugins.plugins {
        add(&mut routes, &broker);
    }
    let mut routes = routes.routes();
    // tonic's own fallback answers Unimplemented without a message; name
    // the service, as grpc-go's server does.
    let router = std::mem::take(routes.axum_router_mut());
    *routes.axum_router_mut() = router.fallback(unknown_service);
    Ok(routes)
}

/// The answer to a call of a service this plugin does not serve.
async fn unknown_service(uri: http::Uri) -> http::Response<tonic::body::Body> {
    let status = tonic::Status::unimplemented(unknown_service_message(uri.path()));
    let (parts, ()) = status.into_http::<()>().into_parts();
    http::Response::from_parts(parts, tonic::body::Body::empty())
}

/// grpc-go's message for a call of `path` (`/package.Service/Method`) to
/// an unknown service.
fn unknown_service_message(path: &str) -> String {
    let method = path.strip_prefix('/').unwrap_or(path);
    match method.rsplit_once('/') {
        Some((service, _)) => format!("unknown service {service}"),
        None => format!("malformed method name: {path:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_services_are_named_as_grpc_go_names_them() {
        let cases = [
            (
                "/greeter.v1.Greeter/Hello",
                "unknown service greeter.v1.Greeter",
            ),
            ("/proto.KV/Get", "unknown service proto.KV"),
            ("/a/b/c", "unknown service a/b"),
            ("/nomethod", "malformed method name: \"/nomethod\""),
        ];
        for (path, want) in cases {
            assert_eq!(unknown_service_message(path), want, "{path}");
        }
    }
}
