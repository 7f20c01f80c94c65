//! Handshakes of well-known go-plugin hosts, so `--preset NAME` plays that
//! host. Every value is copied from the file cited next to it (the
//! upstream repositories' default branches as of 2026).

use goplug::Protocol;

/// A host's handshake: what it sends and what it accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Preset {
    /// The `--preset` name.
    pub(crate) name: &'static str,
    /// Who uses it, for `--help` and errors.
    pub(crate) host: &'static str,
    pub(crate) cookie_key: &'static str,
    pub(crate) cookie_value: &'static str,
    /// The app protocol versions the host offers.
    pub(crate) versions: &'static [u32],
    pub(crate) protocols: &'static [Protocol],
    pub(crate) auto_mtls: bool,
    /// Extra environment the host sets for its plugins.
    pub(crate) env: &'static [(&'static str, &'static str)],
}

/// Terraform providers (plugin protocol 5 and 6).
///
/// - Cookie: github.com/hashicorp/terraform-plugin-go,
///   `tfprotov5/tf5server/server.go` and `tfprotov6/tf6server/server.go`
///   (`plugin.HandshakeConfig{MagicCookieKey: "TF_PLUGIN_MAGIC_COOKIE",
///   MagicCookieValue: "d602bf8f…9872b2"}`); the servers announce
///   `protocolVersionMajor` 5 and 6 respectively (same files).
/// - Host: github.com/hashicorp/terraform, `internal/command/meta_providers.go`:
///   `AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC}` and
///   `AutoMTLS: enableProviderAutoMTLS` (true unless `TF_DISABLE_PLUGIN_TLS`
///   is set), `VersionedPlugins` with versions 5 and 6.
pub(crate) const TERRAFORM: Preset = Preset {
    name: "terraform",
    host: "Terraform providers",
    cookie_key: "TF_PLUGIN_MAGIC_COOKIE",
    cookie_value: "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
    versions: &[5, 6],
    protocols: &[Protocol::Grpc],
    auto_mtls: true,
    env: &[],
};

/// Vault secrets and auth backend plugins. Vault offers 3 and 4 to plugins
/// served with `plugin.Serve`, 5 to those served with `ServeMultiplex`; the
/// preset offers all three and the plugin picks the highest it has.
///
/// - Cookie: github.com/hashicorp/vault, `sdk/plugin/serve.go`
///   (`HandshakeConfig{MagicCookieKey: "VAULT_BACKEND_PLUGIN",
///   MagicCookieValue: "6669da05-b1c8-4f49-97d9-c8e5bed98e20"}`).
/// - Versions: 3 and 4 in `sdk/plugin/plugin.go` (`NewPluginClient`), 5
///   (multiplexed) in `sdk/plugin/plugin_v5.go` (`PluginSet`), which also
///   sets `AutoMTLS: true`.
/// - Protocols: `sdk/helper/pluginutil/run_config.go` allows
///   `ProtocolNetRPC` and `ProtocolGRPC`, and sets
///   `VAULT_PLUGIN_AUTOMTLS_ENABLED` and `VAULT_PLUGIN_METADATA_MODE`
///   (names in `sdk/helper/pluginutil/env.go`). Without AutoMTLS Vault
///   hands the plugin a wrapping token it unwraps through Vault's API,
///   which no stand-in host can serve, so the preset uses AutoMTLS.
pub(crate) const VAULT: Preset = Preset {
    name: "vault",
    host: "Vault backend (secrets/auth) plugins",
    cookie_key: "VAULT_BACKEND_PLUGIN",
    cookie_value: "6669da05-b1c8-4f49-97d9-c8e5bed98e20",
    versions: &[3, 4, 5],
    protocols: &[Protocol::NetRpc, Protocol::Grpc],
    auto_mtls: true,
    env: &[
        ("VAULT_PLUGIN_AUTOMTLS_ENABLED", "true"),
        ("VAULT_PLUGIN_METADATA_MODE", "false"),
    ],
};

/// Vault database plugins (dbplugin v5).
///
/// - Cookie: github.com/hashicorp/vault,
///   `sdk/database/dbplugin/v5/grpc_database_plugin.go`
///   (`MagicCookieKey: "VAULT_DATABASE_PLUGIN", MagicCookieValue:
///   "926a0820-aea2-be28-51d6-83cdf00e8edb"`).
/// - Versions 5 and 6 and `pluginutil.AutoMTLS(true)`:
///   `sdk/database/dbplugin/v5/plugin_client.go`; protocols and
///   environment as for [`VAULT`] (`run_config.go`).
pub(crate) const VAULT_DATABASE: Preset = Preset {
    name: "vault-database",
    host: "Vault database plugins",
    cookie_key: "VAULT_DATABASE_PLUGIN",
    cookie_value: "926a0820-aea2-be28-51d6-83cdf00e8edb",
    versions: &[5, 6],
    protocols: &[Protocol::NetRpc, Protocol::Grpc],
    auto_mtls: true,
    env: &[
        ("VAULT_PLUGIN_AUTOMTLS_ENABLED", "true"),
        ("VAULT_PLUGIN_METADATA_MODE", "false"),
    ],
};

/// Why there is no Packer preset: github.com/hashicorp/packer-plugin-sdk,
/// `plugin/server.go`, checks the cookie `PACKER_PLUGIN_MAGIC_COOKIE` but
/// then prints `APIVersionMajor|APIVersionMinor|network|address` (`5|0|…`)
/// and serves Packer's own net/rpc over yamux: it does not use go-plugin
/// (its `go.mod` does not require it), so no go-plugin host can talk to it.
pub(crate) const PACKER_REFUSAL: &str = "Packer plugins do not speak go-plugin's protocol: packer-plugin-sdk (plugin/server.go) prints its own \"5|0|network|address\" line and serves Packer's own RPC, so goplug cannot host them";

/// Every preset, for lookup and `--help`.
pub(crate) const ALL: [&Preset; 3] = [&TERRAFORM, &VAULT, &VAULT_DATABASE];

/// The preset called `name`.
///
/// # Errors
///
/// A sentence saying what exists (or why Packer does not).
pub(crate) fn find(name: &str) -> Result<&'static Preset, String> {
    if name.eq_ignore_ascii_case("packer") {
        return Err(PACKER_REFUSAL.to_owned());
    }
    ALL.iter()
        .copied()
        .find(|preset| preset.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let names: Vec<&str> = ALL.iter().map(|p| p.name).collect();
            format!(
                "unknown preset {name:?}: use one of {}, or give --cookie-key and --cookie-value",
                names.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_found_by_name_and_packer_is_explained() {
        assert_eq!(find("terraform"), Ok(&TERRAFORM));
        assert_eq!(find("Vault"), Ok(&VAULT));
        assert_eq!(find("vault-database"), Ok(&VAULT_DATABASE));
        assert!(find("packer").unwrap_err().contains("packer-plugin-sdk"));
        assert!(find("nomad").unwrap_err().contains("terraform, vault"));
    }

    #[test]
    fn terraform_cookie_is_the_sdks() {
        // terraform-plugin-go, tfprotov5/tf5server/server.go and
        // tfprotov6/tf6server/server.go.
        assert_eq!(
            TERRAFORM.cookie_value,
            "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
        );
    }
}
