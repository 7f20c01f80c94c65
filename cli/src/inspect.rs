//! `goplug inspect`: what a plugin negotiated and serves.

use std::collections::BTreeSet;
use std::time::Duration;

use goplug::Protocol;
use goplug::host::{Client, ShutdownReport};
use goplug::tls::TlsVersion;
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor};
use serde_json::{Value, json};

use crate::launch::HostConfig;
use crate::reflect::{ReflectError, Reflected};
use crate::style::{Style, pad};

/// Everything `inspect` found out.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) protocol: Protocol,
    pub(crate) version: u32,
    pub(crate) network: &'static str,
    pub(crate) address: String,
    pub(crate) pid: Option<u32>,
    pub(crate) tls: Option<TlsVersion>,
    pub(crate) health: Result<(), String>,
    /// What the plugin reports through Vault's `logical.PluginVersion`.
    pub(crate) plugin_version: Result<Option<goplug::semver::Version>, String>,
    pub(crate) startup: Duration,
    pub(crate) reflection: Result<Reflected, ReflectError>,
    pub(crate) shutdown: Option<ShutdownReport>,
    /// With `--sandbox`, what it could not apply (feature, reason).
    pub(crate) sandbox: Option<Vec<(String, String)>>,
}

/// Asks the running plugin everything but the shutdown.
pub(crate) async fn gather(client: &Client) -> Report {
    let health = client.ping().await.map_err(|e| e.to_string());
    let plugin_version = client
        .plugin_version()
        .await
        .map(|version| version.cloned())
        .map_err(|e| e.to_string());
    let reflection = if client.protocol() == Protocol::Grpc {
        crate::reflect::reflect(client.channel()).await
    } else {
        Err(ReflectError::NetRpc)
    };
    Report {
        protocol: client.protocol(),
        version: client.negotiated_version(),
        network: client.address().network(),
        address: client.address().address_string(),
        pid: client.pid(),
        tls: client.tls_version(),
        health,
        plugin_version,
        startup: client.start_duration(),
        reflection,
        shutdown: None,
        sandbox: client.sandbox_report().map(|report| {
            report
                .missing
                .iter()
                .map(|(feature, reason)| (feature.to_string(), reason.clone()))
                .collect()
        }),
    }
}

fn tls_name(version: TlsVersion) -> &'static str {
    match version {
        TlsVersion::Tls12 => "1.2",
        _ => "1.3",
    }
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

/// Services go-plugin and goplug add to every plugin, and the version
/// service (shown as the Version row).
fn is_internal(service: &str) -> bool {
    service.starts_with("plugin.GRPC")
        || service == "logical.PluginVersion"
        || service.starts_with("grpc.health.v1.")
        || service.starts_with("grpc.reflection.")
}

/// A field's type as a .proto file spells it.
pub(crate) fn field_type(field: &FieldDescriptor) -> String {
    if field.is_map()
        && let Kind::Message(entry) = field.kind()
    {
        let key = entry.map_entry_key_field();
        let value = entry.map_entry_value_field();
        return format!(
            "map<{}, {}>",
            kind_name(&key.kind()),
            kind_name(&value.kind())
        );
    }
    let name = kind_name(&field.kind());
    if field.is_list() {
        format!("repeated {name}")
    } else {
        name
    }
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Double => "double".into(),
        Kind::Float => "float".into(),
        Kind::Int32 => "int32".into(),
        Kind::Int64 => "int64".into(),
        Kind::Uint32 => "uint32".into(),
        Kind::Uint64 => "uint64".into(),
        Kind::Sint32 => "sint32".into(),
        Kind::Sint64 => "sint64".into(),
        Kind::Fixed32 => "fixed32".into(),
        Kind::Fixed64 => "fixed64".into(),
        Kind::Sfixed32 => "sfixed32".into(),
        Kind::Sfixed64 => "sfixed64".into(),
        Kind::Bool => "bool".into(),
        Kind::String => "string".into(),
        Kind::Bytes => "bytes".into(),
        Kind::Message(message) => message.full_name().into(),
        Kind::Enum(enumeration) => enumeration.full_name().into(),
    }
}

fn method_json(method: &MethodDescriptor) -> Value {
    json!({
        "name": method.name(),
        "full_name": format!("{}/{}", method.parent_service().full_name(), method.name()),
        "input_type": method.input().full_name(),
        "output_type": method.output().full_name(),
        "client_streaming": method.is_client_streaming(),
        "server_streaming": method.is_server_streaming(),
    })
}

fn message_json(message: &MessageDescriptor) -> Value {
    let fields: Vec<Value> = message
        .fields()
        .map(|field| {
            json!({
                "name": field.name(),
                "json_name": field.json_name(),
                "number": field.number(),
                "type": field_type(&field),
            })
        })
        .collect();
    json!({ "fields": fields })
}

/// The message types the methods of `services` take and return, sorted.
fn message_types(reflected: &Reflected, services: &[&String]) -> Vec<MessageDescriptor> {
    let mut seen = BTreeSet::new();
    let mut messages = Vec::new();
    for name in services {
        let Some(service) = reflected.pool.get_service_by_name(name) else {
            continue;
        };
        for method in service.methods() {
            for message in [method.input(), method.output()] {
                if seen.insert(message.full_name().to_owned()) {
                    messages.push(message);
                }
            }
        }
    }
    messages.sort_by(|a, b| a.full_name().cmp(b.full_name()));
    messages
}

impl Report {
    /// The report as one JSON document.
    pub(crate) fn to_json(&self, host: &HostConfig) -> Value {
        let (reflection, services, messages) = match &self.reflection {
            Ok(reflected) => {
                let services: Vec<Value> = reflected
                    .services
                    .iter()
                    .map(|name| {
                        let error = reflected
                            .unresolved
                            .iter()
                            .find(|(service, _)| service == name)
                            .map(|(_, why)| why.clone());
                        let methods: Vec<Value> = reflected
                            .pool
                            .get_service_by_name(name)
                            .map(|service| service.methods().map(|m| method_json(&m)).collect())
                            .unwrap_or_default();
                        json!({ "name": name, "methods": methods, "error": error })
                    })
                    .collect();
                let all: Vec<&String> = reflected.services.iter().collect();
                let messages: serde_json::Map<String, Value> = message_types(reflected, &all)
                    .iter()
                    .map(|message| (message.full_name().to_owned(), message_json(message)))
                    .collect();
                (
                    json!({ "available": true, "api": reflected.api, "error": null }),
                    services,
                    messages,
                )
            }
            Err(error) => (
                json!({
                    "available": false,
                    "api": null,
                    "error": error.to_string(),
                }),
                Vec::new(),
                serde_json::Map::new(),
            ),
        };
        let shutdown = self.shutdown.map(|report| {
            json!({
                "graceful": report.graceful,
                "exit_status": report.status.map(|s| s.code()),
                "elapsed_ms": millis(report.elapsed),
            })
        });
        json!({
            "plugin": {
                "path": host.program,
                "args": host.args,
                "pid": self.pid,
            },
            "handshake": {
                "cookie_key": host.cookie_key,
                "versions_offered": host.versions,
                "protocols_allowed": host.protocols.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                "auto_mtls": host.auto_mtls,
            },
            "protocol": self.protocol.as_str(),
            "version": self.version,
            "plugin_version": self.plugin_version.as_ref().ok().and_then(Option::as_ref).map(ToString::to_string),
            "plugin_version_error": self.plugin_version.as_ref().err(),
            "transport": { "network": self.network, "address": self.address },
            "tls": {
                "enabled": self.tls.is_some(),
                "version": self.tls.map(tls_name),
                "auto_mtls": host.auto_mtls,
            },
            "health": match &self.health {
                Ok(()) => json!({ "serving": true, "status": "SERVING", "error": null }),
                Err(error) => json!({ "serving": false, "status": "NOT_SERVING", "error": error }),
            },
            "startup_ms": millis(self.startup),
            "sandbox": self.sandbox.as_ref().map(|missing| json!({
                "complete": missing.is_empty(),
                "missing": missing.iter().map(|(feature, reason)| json!({ "feature": feature, "reason": reason })).collect::<Vec<_>>(),
            })),
            "reflection": reflection,
            "services": services,
            "messages": messages,
            "shutdown": shutdown,
        })
    }

    /// The report for people: aligned, coloured on a terminal.
    pub(crate) fn to_text(&self, host: &HostConfig, style: Style) -> String {
        let mut out = String::new();
        let mut row = |key: &str, value: String| {
            out.push_str(&format!("{} {value}\n", style.bold(&pad(key, 11))));
        };
        let pid = self
            .pid
            .map(|pid| format!(" (pid {pid})"))
            .unwrap_or_default();
        row("Plugin", format!("{}{pid}", host.program));
        row(
            "Protocol",
            format!("{}, app protocol version {}", self.protocol, self.version),
        );
        row(
            "Version",
            match &self.plugin_version {
                Ok(Some(version)) => version.to_string(),
                Ok(None) if self.protocol == Protocol::NetRpc => {
                    style.yellow("none (net/rpc has no version service)")
                }
                Ok(None) => style.yellow("none reported (no logical.PluginVersion service)"),
                Err(error) => style.red(error),
            },
        );
        row("Transport", format!("{} {}", self.network, self.address));
        row(
            "TLS",
            match self.tls {
                Some(version) if host.auto_mtls => {
                    style.green(&format!("TLS {} (AutoMTLS)", tls_name(version)))
                }
                Some(version) => style.green(&format!("TLS {}", tls_name(version))),
                None => style.yellow("off"),
            },
        );
        row(
            "Health",
            match &self.health {
                Ok(()) => style.green("SERVING"),
                Err(error) => style.red(error),
            },
        );
        row("Start-up", format!("{} ms", millis(self.startup)));
        if let Some(missing) = &self.sandbox {
            let text = if missing.is_empty() {
                style.green("confined (everything in force)")
            } else {
                let names: Vec<&str> = missing
                    .iter()
                    .map(|(feature, _)| feature.as_str())
                    .collect();
                style.yellow(&format!("confined, without {}", names.join(", ")))
            };
            row("Sandbox", text);
        }
        match &self.reflection {
            Ok(reflected) => row("Reflection", reflected.api.to_owned()),
            Err(error) => row("Reflection", style.yellow(&error.to_string())),
        }
        if let Some(report) = self.shutdown {
            let status = report
                .status
                .map(|status| format!(", {status}"))
                .unwrap_or_default();
            let how = if report.graceful {
                style.green("graceful")
            } else {
                style.yellow("killed after the grace period")
            };
            row(
                "Shutdown",
                format!("{how}{status}, {} ms", millis(report.elapsed)),
            );
        }
        if let Ok(reflected) = &self.reflection {
            out.push_str(&services_text(reflected, style));
        }
        out
    }
}

fn services_text(reflected: &Reflected, style: Style) -> String {
    let mut out = format!(
        "\n{}\n",
        style.bold(&format!("Services ({})", reflected.services.len()))
    );
    // The plugin's own services first, then what every plugin serves.
    let mut ordered: Vec<&String> = reflected.services.iter().collect();
    ordered.sort_by_key(|name| (is_internal(name), name.as_str()));
    for name in ordered {
        out.push_str(&format!("  {}\n", style.cyan(name)));
        if let Some((_, why)) = reflected
            .unresolved
            .iter()
            .find(|(service, _)| service == name)
        {
            out.push_str(&format!(
                "    {}\n",
                style.yellow(&format!("(no descriptor: {why})"))
            ));
            continue;
        }
        let Some(service) = reflected.pool.get_service_by_name(name) else {
            continue;
        };
        let width = service
            .methods()
            .map(|m| m.name().chars().count())
            .max()
            .unwrap_or(0);
        for method in service.methods() {
            let stream = |streaming: bool| if streaming { "stream " } else { "" };
            out.push_str(&format!(
                "    {} ({}{}) returns ({}{})\n",
                pad(method.name(), width),
                stream(method.is_client_streaming()),
                method.input().full_name(),
                stream(method.is_server_streaming()),
                method.output().full_name(),
            ));
        }
    }
    let own: Vec<&String> = reflected
        .services
        .iter()
        .filter(|s| !is_internal(s))
        .collect();
    let messages = message_types(reflected, &own);
    if !messages.is_empty() {
        out.push_str(&format!("\n{}\n", style.bold("Messages")));
        for message in messages {
            let fields: Vec<String> = message
                .fields()
                .map(|f| format!("{} {} = {}", field_type(&f), f.name(), f.number()))
                .collect();
            let body = if fields.is_empty() {
                "{}".to_owned()
            } else {
                format!("{{ {}; }}", fields.join("; "))
            };
            out.push_str(&format!("  {} {}\n", style.cyan(message.full_name()), body));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_types_read_like_proto() {
        let pool =
            prost_reflect::DescriptorPool::decode(goplug_example_kv::pb::FILE_DESCRIPTOR_SET)
                .unwrap();
        let put = pool.get_message_by_name("proto.PutRequest").unwrap();
        let types: Vec<String> = put.fields().map(|f| field_type(&f)).collect();
        assert_eq!(types, ["string", "bytes"]);
        assert!(is_internal("plugin.GRPCBroker"));
        assert!(is_internal("grpc.health.v1.Health"));
        assert!(is_internal("logical.PluginVersion"));
        assert!(!is_internal("proto.KV"));
    }
}
