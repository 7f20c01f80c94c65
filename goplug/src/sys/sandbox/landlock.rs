//! Landlock: the file-system rules, TCP rules and scopes of a plugin,
//! built into a ruleset in the parent; the child only calls
//! `landlock_restrict_self`.

use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath,
    PathFd, Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr, Scope,
};

use super::{Missing, PathAccess, PathRule, Spec};
use crate::error::{Error, Result, SandboxFeature};

/// The highest ABI whose rights are handled. ABI 9 would also handle
/// connects to pathname Unix sockets, which the broker needs from both
/// sides: it waits for rules that allow the socket directories.
const HANDLED_ABI: ABI = ABI::V8;

/// What this kernel's Landlock can do.
#[derive(Clone, Copy, Debug, Default)]
struct Support {
    filesystem: bool,
    network: bool,
    scopes: bool,
}

/// Asks the kernel, with rulesets that demand each feature, which parts
/// of Landlock it has.
fn support() -> Support {
    let demands = || Ruleset::default().set_compatibility(CompatLevel::HardRequirement);
    Support {
        filesystem: demands()
            .handle_access(AccessFs::from_all(ABI::V1))
            .and_then(Ruleset::create)
            .is_ok(),
        network: demands()
            .handle_access(AccessNet::from_all(ABI::V4))
            .and_then(Ruleset::create)
            .is_ok(),
        scopes: demands()
            .scope(Scope::from_all(ABI::V6))
            .and_then(Ruleset::create)
            .is_ok(),
    }
}

/// The ruleset for `spec`, ready for `restrict_self` in the child, and
/// what the kernel could not give. `None` when Landlock is absent.
pub(super) fn prepare(spec: &Spec, missing: &mut Vec<Missing>) -> Result<Option<RulesetCreated>> {
    let support = support();
    let mut wanted = vec![(SandboxFeature::LandlockFilesystem, support.filesystem)];
    if spec.connect_ports.is_some() {
        wanted.push((SandboxFeature::LandlockNetwork, support.network));
    }
    if spec.scopes {
        wanted.push((SandboxFeature::LandlockScopes, support.scopes));
    }
    for (feature, supported) in wanted {
        if !supported {
            let reason = "this kernel's Landlock lacks it (or Landlock is off)";
            missing.push(Missing::new(feature, reason, spec.strict)?);
        }
    }
    if !support.filesystem {
        return Ok(None);
    }
    build(spec, support).map(Some)
}

fn build(spec: &Spec, support: Support) -> Result<RulesetCreated> {
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(HANDLED_ABI))
        .map_err(failed)?;
    if spec.connect_ports.is_some() && support.network {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(ABI::V4))
            .map_err(failed)?;
    }
    if spec.scopes && support.scopes {
        ruleset = ruleset.scope(Scope::from_all(ABI::V6)).map_err(failed)?;
    }
    let mut created = ruleset.create().map_err(failed)?;
    for rule in &spec.paths {
        let Some((fd, is_dir)) = open(rule)? else {
            continue;
        };
        let mut access = rights(rule.access);
        if !is_dir {
            access &= AccessFs::from_file(HANDLED_ABI);
        }
        created = created
            .add_rule(PathBeneath::new(fd, access))
            .map_err(failed)?;
    }
    if let Some(ports) = &spec.connect_ports
        && support.network
    {
        for port in ports {
            created = created
                .add_rule(NetPort::new(*port, AccessNet::ConnectTcp))
                .map_err(failed)?;
        }
    }
    Ok(created)
}

fn failed(error: landlock::RulesetError) -> Error {
    Error::Sandbox {
        context: "building the Landlock ruleset".to_owned(),
        error: std::io::Error::other(error),
    }
}

/// Opens a rule's path; a default path that does not exist is skipped, a
/// path the user named must exist.
fn open(rule: &PathRule) -> Result<Option<(PathFd, bool)>> {
    match PathFd::new(&rule.path) {
        Ok(fd) => Ok(Some((fd, is_dir(&rule.path)))),
        Err(_) if !rule.required => Ok(None),
        Err(e) => Err(Error::Sandbox {
            context: format!(
                "allowing {}: it cannot be opened (it must exist when the plugin starts)",
                rule.path.display()
            ),
            error: std::io::Error::other(e.to_string()),
        }),
    }
}

fn is_dir(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_dir())
}

fn rights(access: PathAccess) -> BitFlags<AccessFs> {
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    match access {
        PathAccess::Read => read,
        PathAccess::Execute => read | AccessFs::Execute,
        PathAccess::Write => AccessFs::from_all(HANDLED_ABI) & !AccessFs::Execute,
        PathAccess::Device => {
            AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev
        }
    }
}
