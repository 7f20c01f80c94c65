//! Environment variable names and fixed texts of go-plugin's protocol.
//!
//! These are facts of the wire protocol: Go hosts and plugins read and write
//! exactly these names, and downstream tools grep for the messages.

/// App protocol versions the host offers, comma-separated (`2,3`).
pub const PLUGIN_PROTOCOL_VERSIONS: &str = "PLUGIN_PROTOCOL_VERSIONS";
/// Lowest TCP port a plugin may listen on (TCP transport only).
pub const PLUGIN_MIN_PORT: &str = "PLUGIN_MIN_PORT";
/// Highest TCP port a plugin may listen on (TCP transport only).
pub const PLUGIN_MAX_PORT: &str = "PLUGIN_MAX_PORT";
/// The host's PEM certificate when it wants automatic mutual TLS.
pub const PLUGIN_CLIENT_CERT: &str = "PLUGIN_CLIENT_CERT";
/// Set (to `true`) when the host wants the gRPC broker multiplexed.
pub const PLUGIN_MULTIPLEX_GRPC: &str = "PLUGIN_MULTIPLEX_GRPC";
/// Directory in which the plugin creates its Unix sockets.
pub const PLUGIN_UNIX_SOCKET_DIR: &str = "PLUGIN_UNIX_SOCKET_DIR";
/// Group (name or numeric gid) that gets access to the plugin's sockets.
pub const PLUGIN_UNIX_SOCKET_GROUP: &str = "PLUGIN_UNIX_SOCKET_GROUP";

/// goplug's own: set by a goplug host that launched the plugin to outlive
/// it ([`LocalRunner::keep_running`](crate::host::LocalRunner::keep_running)),
/// so a goplug plugin does not exit when its host does.
pub const GOPLUG_KEEP_RUNNING: &str = "GOPLUG_KEEP_RUNNING";
/// goplug only: the `EnvFilter` directives of a Rust plugin's
/// `goplug::log::init` (a plugin does not read `RUST_LOG`, which it would
/// inherit from its host).
pub const GOPLUG_LOG: &str = "GOPLUG_LOG";

/// Default of [`PLUGIN_MIN_PORT`] that go-plugin hosts send.
pub const DEFAULT_MIN_PORT: u16 = 10000;
/// Default of [`PLUGIN_MAX_PORT`] that go-plugin hosts send.
pub const DEFAULT_MAX_PORT: u16 = 25000;

/// What a plugin prints on stderr when it is run without its host's cookie.
/// Byte for byte go-plugin's text.
pub const NOT_LAUNCHED_BY_HOST: &str = "This binary is a plugin. These are not meant to be executed directly.\n\
Please execute the program that consumes these plugins, which will\n\
load any plugins automatically\n";

/// What a plugin prints on stderr when its own cookie key or value is empty.
/// Byte for byte go-plugin's text.
pub const MISCONFIGURED_COOKIE: &str = "Misconfigured ServeConfig given to serve this plugin: no magic cookie\n\
key or value was set. Please notify the plugin author and report\n\
this as a bug.\n";

/// The part of [`cookie_mismatch`]'s text a host looks for in a plugin's
/// stderr.
pub const COOKIE_MISMATCH_MARKER: &str = "is set, but not to this plugin's value";

/// What a goplug plugin prints on stderr when the cookie variable `key` is
/// set to another value than its own: it was launched, by a host with
/// another handshake config. Neither value is printed: a cookie may be a
/// secret.
pub fn cookie_mismatch(key: &str) -> String {
    format!(
        "This plugin's magic cookie variable {key} {COOKIE_MISMATCH_MARKER}: \
the host's and this plugin's handshake configs (magic cookie) differ.\n\
Build both from the same HandshakeConfig (magic_cookie_key and magic_cookie_value).\n"
    )
}
