//! `goplug`: grpcurl for go-plugin plugins. It plays the host for any
//! plugin (Go, Rust, Python): `inspect` reports what the plugin negotiated
//! and serves, `call` invokes a method with JSON, `checksum` prints the
//! SHA-256 a host pins, and `demo` runs the KV example from this binary.

mod call;
mod descriptors;
mod error;
mod inspect;
mod launch;
mod presets;
mod reflect;
mod style;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use goplug::Protocol;
use goplug::host::{Channel, Client};
use serde_json::json;

use crate::error::CliError;
use crate::launch::{HandshakeFlags, HostConfig, parse_duration, write_stderr_line};
use crate::style::Style;

const EXAMPLES: &str = "\
Examples:
  goplug inspect --preset terraform ./terraform-provider-null_v3.2.2
  goplug inspect --cookie-key BASIC_PLUGIN --cookie-value hello ./kv-plugin
  goplug call --cookie-key BASIC_PLUGIN --cookie-value hello ./kv-plugin proto.KV/Get '{\"key\":\"hello\"}'
  goplug checksum ./kv-plugin
  goplug demo

Exit codes: 0 ok, 2 usage error, 3 plugin failure (start, handshake, connect), 4 the RPC failed.";

const INSPECT_EXAMPLES: &str = "\
Examples:
  # A Terraform provider: cookie, protocol versions 5 and 6, AutoMTLS
  goplug inspect --preset terraform ./terraform-provider-random_v3.6.0_x5

  # go-plugin's KV example, its own cookie, as JSON for a script
  goplug inspect --json --cookie-key BASIC_PLUGIN --cookie-value hello ./kv-plugin | jq .services

  # Confined: it reads only system directories and its working directory,
  # writes only there, and has no TCP (--allow-read/--allow-write/--allow-net)
  goplug inspect --sandbox --allow-read /etc/my-plugin --cookie-key BASIC_PLUGIN --cookie-value hello ./kv-plugin

  # Exit 3 unless the plugin reports a version that meets the constraint
  goplug inspect --require-version '>=1.2, <2' --cookie-key BASIC_PLUGIN --cookie-value hello ./kv-plugin

  # Arguments after PLUGIN go to the plugin; goplug's options come before it,
  # and -- keeps an argument that looks like one of goplug's for the plugin
  goplug inspect --cookie-key BASIC_PLUGIN --cookie-value hello python3 plugin.py --port 0
  goplug inspect --cookie-key BASIC_PLUGIN --cookie-value hello -- ./plugin -v

The plugin's log lines and its stdout/stderr appear on stderr, labelled [NAME].";

const CALL_EXAMPLES: &str = "\
Examples:
  goplug call --cookie-key BASIC_PLUGIN --cookie-value hello ./kv-plugin proto.KV/Put '{\"key\":\"hello\",\"value\":\"d29ybGQ=\"}'
  goplug call --cookie-key BASIC_PLUGIN --cookie-value hello ./kv-plugin proto.KV/Get '{\"key\":\"hello\"}'
  echo '{\"key\":\"hello\"}' | goplug call --json --cookie-key BASIC_PLUGIN --cookie-value hello ./kv-plugin proto.KV/Get -
  # A plugin without reflection (Python's grpcio): describe it with its .proto
  goplug call --cookie-key BASIC_PLUGIN --cookie-value hello --proto proto/kv.proto python3 proto.KV/Get '{\"key\":\"hello\"}' -- plugin.py
  # Plugin arguments go after --
  goplug call --preset terraform ./terraform-provider-null_v3.2.2 tfplugin5.Provider/GetSchema '{}' -- -some-flag

The request and response are protobuf JSON: bytes fields are base64, 64-bit
integers are strings. Methods are listed by `goplug inspect`.";

const CHECKSUM_EXAMPLES: &str = "\
Examples:
  goplug checksum ./kv-plugin
  goplug checksum --json ./kv-plugin

Prints the lowercase hex SHA-256 that a host pins (goplug's Checksum parses
it; go-plugin's SecureConfig takes the same bytes).";

const DEMO_EXAMPLES: &str = "\
Examples:
  goplug demo
  goplug demo --json greeting hi

Runs go-plugin's KV example with no build step: this binary is both the host
and the plugin (it serves the KV plugin of examples/kv when started as one),
in a scratch directory, as examples/kv/demo.sh does.";

#[derive(Debug, Parser)]
#[command(
    name = "goplug",
    version,
    about = "Play the host for any go-plugin plugin: inspect it, call its methods",
    long_about = "Play the host for any go-plugin plugin (Go, Rust, Python): launch it with its host's magic cookie and protocol versions, over AutoMTLS if asked, and inspect what it serves or call its methods with JSON.",
    after_help = EXAMPLES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Launch a plugin and report its handshake, transport, TLS, health and services
    #[command(after_help = INSPECT_EXAMPLES)]
    Inspect(InspectArgs),
    /// Call a unary or server-streaming method with a JSON request
    #[command(after_help = CALL_EXAMPLES)]
    Call(CallArgs),
    /// Print the SHA-256 of a plugin binary, as a host pins it
    #[command(after_help = CHECKSUM_EXAMPLES)]
    Checksum(ChecksumArgs),
    /// Run the KV demo (put and get a value) with this binary as the plugin
    #[command(after_help = DEMO_EXAMPLES)]
    Demo(DemoArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ProtocolArg {
    Grpc,
    Netrpc,
}

impl From<ProtocolArg> for Protocol {
    fn from(protocol: ProtocolArg) -> Self {
        match protocol {
            ProtocolArg::Grpc => Protocol::Grpc,
            ProtocolArg::Netrpc => Protocol::NetRpc,
        }
    }
}

/// How to play the host.
#[derive(Debug, Args)]
struct HostArgs {
    /// A known host's handshake: terraform, vault, vault-database (flags override it)
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
    /// The magic cookie's environment variable
    #[arg(long, value_name = "KEY")]
    cookie_key: Option<String>,
    /// The magic cookie's value
    #[arg(long, value_name = "VALUE")]
    cookie_value: Option<String>,
    /// App protocol versions to offer [default: 1, or the preset's]
    #[arg(long, value_name = "V1,V2", value_delimiter = ',')]
    versions: Option<Vec<u32>>,
    /// Protocols to accept [default: grpc,netrpc, or the preset's]
    #[arg(long, value_name = "P1,P2", value_delimiter = ',', value_enum)]
    protocols: Option<Vec<ProtocolArg>>,
    /// Automatic mutual TLS (`--auto-mtls=false` turns a preset's off)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    auto_mtls: Option<bool>,
    /// How long the plugin has to handshake and accept the connection
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    start_timeout: Duration,
    /// An extra environment variable for the plugin (repeatable)
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Confine the plugin with goplug's default sandbox (Linux): read-only
    /// system directories, read-write working, socket and temp directories
    /// only, no TCP, a seccomp deny list, no core dumps
    #[arg(long)]
    sandbox: bool,
    /// With --sandbox: let the plugin read PATH too (repeatable)
    #[arg(long, value_name = "PATH", requires = "sandbox")]
    allow_read: Vec<std::path::PathBuf>,
    /// With --sandbox: let the plugin write under PATH too (repeatable)
    #[arg(long, value_name = "PATH", requires = "sandbox")]
    allow_write: Vec<std::path::PathBuf>,
    /// With --sandbox: leave TCP open (bind and connect)
    #[arg(long, requires = "sandbox")]
    allow_net: bool,
    /// One JSON document on stdout instead of text
    #[arg(long)]
    json: bool,
    /// Also show goplug's own debug log on stderr
    #[arg(short, long)]
    verbose: bool,
}

impl HostArgs {
    /// The sandbox the flags ask for, if any.
    fn sandbox(&self) -> Option<goplug::host::Sandbox> {
        if !self.sandbox {
            return None;
        }
        let mut sandbox = goplug::host::Sandbox::new().allow_net(self.allow_net);
        for path in &self.allow_read {
            sandbox = sandbox.allow_read(path);
        }
        for path in &self.allow_write {
            sandbox = sandbox.allow_write(path);
        }
        Some(sandbox)
    }

    fn resolve(&self, program: String, args: Vec<String>) -> Result<HostConfig, CliError> {
        let preset = self
            .preset
            .as_deref()
            .map(presets::find)
            .transpose()
            .map_err(CliError::usage)?;
        HandshakeFlags {
            preset,
            cookie_key: self.cookie_key.clone(),
            cookie_value: self.cookie_value.clone(),
            versions: self.versions.clone(),
            protocols: self
                .protocols
                .as_ref()
                .map(|p| p.iter().copied().map(Protocol::from).collect()),
            auto_mtls: self.auto_mtls,
            env: self.env.clone(),
        }
        .resolve(program, args, self.start_timeout)
        .map(|config| HostConfig {
            sandbox: self.sandbox(),
            ..config
        })
    }
}

#[derive(Debug, Args)]
struct InspectArgs {
    #[command(flatten)]
    host: HostArgs,
    /// Refuse (exit 3) a plugin whose version (Vault's logical.PluginVersion)
    /// does not meet CONSTRAINT, or that reports none: Cargo or go-version
    /// syntax, e.g. '>=1.2, <2' or '~> 1.2'
    #[arg(long, value_name = "CONSTRAINT", value_parser = parse_constraint)]
    require_version: Option<goplug::host::VersionConstraint>,
    /// The plugin executable
    #[arg(value_name = "PLUGIN")]
    plugin: String,
    /// Arguments for the plugin
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    args: Vec<String>,
}

#[derive(Debug, Args)]
struct CallArgs {
    #[command(flatten)]
    host: HostArgs,
    /// The plugin executable
    #[arg(value_name = "PLUGIN")]
    plugin: String,
    /// The method: package.Service/Method
    #[arg(value_name = "SERVICE/METHOD")]
    method: String,
    /// The request as protobuf JSON; `-` reads it from stdin
    #[arg(value_name = "JSON", default_value = "{}")]
    request: String,
    /// Deadline of the call (0 for none)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    timeout: Duration,
    /// Print fields that have their default value too
    #[arg(long)]
    emit_defaults: bool,
    /// Describe the method with this .proto file instead of reflection (repeatable)
    #[arg(long, value_name = "FILE")]
    proto: Vec<std::path::PathBuf>,
    /// Where --proto files' imports are found (repeatable) [default: each file's directory]
    #[arg(long, value_name = "DIR")]
    import_path: Vec<std::path::PathBuf>,
    /// Describe the method with this encoded FileDescriptorSet (protoc -o) (repeatable)
    #[arg(long, value_name = "FILE")]
    protoset: Vec<std::path::PathBuf>,
    /// Arguments for the plugin, after `--`
    #[arg(value_name = "ARGS", last = true)]
    args: Vec<String>,
}

#[derive(Debug, Args)]
struct ChecksumArgs {
    /// The plugin binary
    #[arg(value_name = "BINARY")]
    binary: std::path::PathBuf,
    /// One JSON document on stdout instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// The key to put and get
    #[arg(default_value = "hello")]
    key: String,
    /// The value to put
    #[arg(default_value = "world")]
    value: String,
    /// One JSON document on stdout instead of text
    #[arg(long)]
    json: bool,
    /// Show the plugin's output and goplug's debug log on stderr
    #[arg(short, long)]
    verbose: bool,
    /// Serve the KV plugin (how the demo host starts this binary)
    #[arg(long, hide = true)]
    serve_plugin: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The plugin half of the demo: goplug's own runtime, stdout for the
    // handshake line only.
    if let Command::Demo(DemoArgs {
        serve_plugin: true, ..
    }) = &cli.command
    {
        return goplug::plugin::run(goplug_example_kv::serve_config());
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            write_stderr_line(&format!(
                "goplug: error: cannot start the async runtime: {e}"
            ));
            return ExitCode::from(3);
        }
    };
    let (json, verbose) = match &cli.command {
        Command::Inspect(args) => (args.host.json, args.host.verbose),
        Command::Call(args) => (args.host.json, args.host.verbose),
        Command::Checksum(args) => (args.json, false),
        Command::Demo(args) => (args.json, args.verbose),
    };
    init_logging(verbose);
    let result = runtime.block_on(async {
        match cli.command {
            Command::Inspect(args) => inspect(args).await,
            Command::Call(args) => call(args).await,
            Command::Checksum(args) => checksum(&args),
            Command::Demo(args) => demo(args).await,
        }
    });
    // Tasks still blocked on I/O must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if json && !failure.printed {
                out(&json!({ "error": failure.error.to_json() }).to_string());
            }
            write_stderr_line(&format!(
                "{} {}",
                Style::stderr().red("goplug: error:"),
                failure.error
            ));
            failure.error.exit_code()
        }
    }
}

/// goplug's own log (warnings; everything with `-v`), never the plugin's
/// lines, which the labelled copy shows.
fn init_logging(verbose: bool) {
    let filter = if verbose {
        "goplug=debug,goplug::plugin=off"
    } else {
        "goplug=warn,goplug::plugin=off"
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_target(false)
        .try_init();
}

/// A failed command: the error, and whether its JSON is already out.
#[derive(Debug)]
struct Failure {
    error: CliError,
    printed: bool,
}

impl From<CliError> for Failure {
    fn from(error: CliError) -> Self {
        Self {
            error,
            printed: false,
        }
    }
}

/// Writes `text` and a newline to stdout; false once stdout is gone (a
/// closed pipe), so callers can stop.
fn out(text: &str) -> bool {
    use std::io::Write as _;
    #[expect(
        clippy::disallowed_methods,
        reason = "the CLI's output; this binary is a plugin only under `demo --serve-plugin`, which never gets here"
    )]
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .is_ok()
}

fn print_json(value: &serde_json::Value) -> bool {
    out(&serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()))
}

/// Runs `work` on the started plugin, then shuts it down, whatever
/// happened; Ctrl-C or SIGTERM interrupts the work, not the shutdown.
async fn with_plugin<T>(
    client: Client,
    work: impl AsyncFnOnce(&Client) -> T,
) -> (Result<T, CliError>, goplug::host::ShutdownReport) {
    let result = tokio::select! {
        result = work(&client) => Ok(result),
        () = launch::interrupted() => Err(CliError::interrupted()),
    };
    let report = client.shutdown().await;
    (result, report)
}

/// A `--require-version` value; a usage error (exit 2) when it does not parse.
fn parse_constraint(text: &str) -> Result<goplug::host::VersionConstraint, String> {
    text.parse()
        .map_err(|e: goplug::protocol::VersionConstraintError| e.reason)
}

async fn inspect(args: InspectArgs) -> Result<(), Failure> {
    let mut host = args.host.resolve(args.plugin, args.args)?;
    host.require_version = args.require_version;
    let client = host.start().await?;
    let (report, shutdown) =
        with_plugin(client, async |client| inspect::gather(client).await).await;
    let mut report = report?;
    report.shutdown = Some(shutdown);
    if args.host.json {
        print_json(&report.to_json(&host));
    } else {
        out(report.to_text(&host, Style::stdout()).trim_end());
    }
    Ok(())
}

async fn call(args: CallArgs) -> Result<(), Failure> {
    let request_text = if args.request == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| CliError::usage(format!("reading the request from stdin: {e}")))?
    } else {
        args.request.clone()
    };
    // Malformed JSON needs no plugin to be found out.
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&request_text) {
        return Err(CliError::usage(format!(
            "the request is not JSON: {e}; write it as '{{\"field\": value}}' (protobuf JSON)"
        ))
        .into());
    }
    // Descriptors from files, when given, replace reflection (as grpcurl).
    let local = descriptors::load(&args.proto, &args.import_path, &args.protoset)?;
    let json_output = args.host.json;
    let timeout = (!args.timeout.is_zero()).then_some(args.timeout);
    let emit_defaults = args.emit_defaults;
    let method_name = args.method.clone();
    let host = args.host.resolve(args.plugin, args.args)?;
    let client = host.start().await?;
    let (result, _) = with_plugin(client, async |client| {
        if client.protocol() != Protocol::Grpc {
            return Err(CliError::plugin(format!(
                "the plugin speaks {}: goplug call is for gRPC plugins only (goplug inspect shows what it negotiated)",
                client.protocol()
            )));
        }
        let reflected = match local {
            Some(local) => local,
            None => crate::reflect::reflect(client.channel()).await.map_err(|e| {
                CliError::plugin(format!(
                    "{e}: describe its methods with --proto FILE (or --protoset FILE) instead"
                ))
            })?,
        };
        let method = call::find_method(&reflected.pool, &reflected.services, &method_name)?;
        let request = call::request_from_json(&method.input(), &request_text)?;
        let streaming = method.is_server_streaming();
        let outcome = call::invoke(client.channel(), &method, request, timeout, |message| {
            // Streams stop when nobody reads them any more (`| head`).
            json_output || print_json(&call::message_to_json(message, emit_defaults))
        })
        .await?;
        Ok((method, reflected, outcome, streaming))
    })
    .await;
    let (method, reflected, outcome, streaming) = result??;
    let full_name = format!("{}/{}", method.parent_service().full_name(), method.name());
    if json_output {
        let responses: Vec<serde_json::Value> = outcome
            .responses
            .iter()
            .map(|m| call::message_to_json(m, emit_defaults))
            .collect();
        let mut document = json!({ "method": full_name });
        if streaming {
            document["responses"] = serde_json::Value::Array(responses);
        } else if let Some(response) = responses.into_iter().next() {
            document["response"] = response;
        }
        if let Some(status) = &outcome.error {
            document["error"] = call::status_to_json(status, &reflected.pool);
        }
        print_json(&document);
    }
    match &outcome.error {
        None => Ok(()),
        Some(status) => Err(Failure {
            error: call::status_error(&full_name, status, &reflected.pool),
            printed: json_output,
        }),
    }
}

fn checksum(args: &ChecksumArgs) -> Result<(), Failure> {
    let metadata = std::fs::metadata(&args.binary).map_err(|e| {
        CliError::usage(format!(
            "cannot read {}: {e}; give the path of a plugin binary",
            args.binary.display()
        ))
    })?;
    if !metadata.is_file() {
        return Err(CliError::usage(format!(
            "{} is not a file; give the path of a plugin binary",
            args.binary.display()
        ))
        .into());
    }
    let sum = goplug::host::Checksum::of_file(&args.binary)
        .map_err(|e| CliError::usage(format!("{e}; give the path of a readable file")))?;
    if args.json {
        print_json(&json!({
            "path": args.binary.display().to_string(),
            "sha256": sum.to_string(),
        }));
    } else {
        out(&sum.to_string());
    }
    Ok(())
}

async fn demo(args: DemoArgs) -> Result<(), Failure> {
    use goplug_example_kv::pb::kv_client::KvClient;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::plugin(format!("cannot find this program's own path: {e}")))?;
    // A scratch directory, as demo.sh uses: the plugin writes kv_<key> there.
    let scratch = tempfile::tempdir()
        .map_err(|e| CliError::plugin(format!("cannot create a scratch directory: {e}")))?;
    let host = HostConfig {
        program: exe.display().to_string(),
        args: vec!["demo".to_owned(), "--serve-plugin".to_owned()],
        cookie_key: goplug_example_kv::HANDSHAKE.magic_cookie_key.to_string(),
        cookie_value: goplug_example_kv::HANDSHAKE.magic_cookie_value.to_string(),
        versions: vec![goplug_example_kv::HANDSHAKE.protocol_version],
        protocols: vec![Protocol::Grpc],
        auto_mtls: false,
        start_timeout: Duration::from_secs(10),
        env: Vec::new(),
        current_dir: Some(scratch.path().to_path_buf()),
        show_output: args.verbose,
        require_version: None,
        sandbox: None,
    };
    let client = host.start().await?;
    let key = args.key.clone();
    let value = args.value.clone();
    let (result, _) = with_plugin(client, async |client| {
        let mut kv: KvClient<Channel> = KvClient::new(client.channel());
        let put = goplug_example_kv::KvCommand::Put {
            key: key.clone(),
            value: value.clone().into_bytes(),
        };
        put.execute(&mut kv).await?;
        let got = goplug_example_kv::KvCommand::Get { key: key.clone() }
            .execute(&mut kv)
            .await?;
        Ok::<_, tonic::Status>(got.unwrap_or_default())
    })
    .await;
    let got = result?.map_err(|status| {
        CliError::call(format!(
            "the demo's KV call failed: {} ({}): {}",
            call::code_name(status.code()),
            status.code() as i32,
            status.message()
        ))
    })?;
    let got = String::from_utf8_lossy(&got).into_owned();
    if args.json {
        print_json(&json!({
            "put": { "key": args.key, "value": args.value },
            "get": { "key": args.key, "value": got },
        }));
    } else {
        // What examples/kv/demo.sh prints.
        out(&format!(
            "$ ./kv put {} {}\n$ ./kv get {}\n{got}",
            args.key, args.value, args.key
        ));
    }
    Ok(())
}
