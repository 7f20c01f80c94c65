//! Descriptors from files, for plugins without reflection: `.proto`
//! sources (compiled in-process with protox) and encoded
//! `FileDescriptorSet`s (`protoc -o`, grpcurl's `-protoset`).

use std::path::{Path, PathBuf};

use prost::Message as _;
use prost_reflect::DescriptorPool;

use crate::error::CliError;
use crate::reflect::Reflected;

/// The pool of the given files; `None` when none were given.
///
/// # Errors
///
/// A usage error naming the file that does not compile or decode.
pub(crate) fn load(
    protos: &[PathBuf],
    import_paths: &[PathBuf],
    protosets: &[PathBuf],
) -> Result<Option<Reflected>, CliError> {
    if protos.is_empty() && protosets.is_empty() {
        return Ok(None);
    }
    let mut pool = DescriptorPool::global();
    for path in protosets {
        let bytes = std::fs::read(path).map_err(|e| {
            CliError::usage(format!("cannot read --protoset {}: {e}", path.display()))
        })?;
        let set = prost_types::FileDescriptorSet::decode(bytes.as_slice()).map_err(|e| {
            CliError::usage(format!(
                "--protoset {} is not an encoded FileDescriptorSet ({e}); make one with protoc --include_imports -o FILE",
                path.display()
            ))
        })?;
        pool.add_file_descriptor_set(set)
            .map_err(|e| CliError::usage(format!("--protoset {}: {e}", path.display())))?;
    }
    if !protos.is_empty() {
        let (files, includes) = compile_inputs(protos, import_paths);
        let set = protox::compile(&files, &includes).map_err(|e| {
            CliError::usage(format!(
                "--proto does not compile: {e}; add the directories its imports are in with --import-path"
            ))
        })?;
        pool.add_file_descriptor_set(set)
            .map_err(|e| CliError::usage(format!("--proto: {e}")))?;
    }
    let services: Vec<String> = pool.services().map(|s| s.full_name().to_owned()).collect();
    Ok(Some(Reflected {
        api: "local descriptors (--proto/--protoset)",
        services,
        pool,
        unresolved: Vec::new(),
    }))
}

/// Without import paths each file's own directory is one, and the file is
/// named relative to it.
fn compile_inputs(protos: &[PathBuf], import_paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<PathBuf>) {
    if !import_paths.is_empty() {
        return (protos.to_vec(), import_paths.to_vec());
    }
    let mut includes: Vec<PathBuf> = Vec::new();
    let mut files = Vec::new();
    for proto in protos {
        let dir = proto
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        files.push(
            proto
                .file_name()
                .map_or_else(|| proto.clone(), PathBuf::from),
        );
        if !includes.contains(&dir) {
            includes.push(dir);
        }
    }
    (files, includes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv_proto() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kv/proto/kv.proto")
    }

    #[test]
    fn proto_files_and_protosets_give_the_same_services() {
        let from_proto = load(&[kv_proto()], &[], &[]).unwrap().unwrap();
        assert_eq!(from_proto.services, ["proto.KV"]);
        assert!(
            from_proto
                .pool
                .get_message_by_name("proto.PutRequest")
                .is_some()
        );

        let dir = tempfile::tempdir().unwrap();
        let set = dir.path().join("kv.protoset");
        std::fs::write(&set, goplug_example_kv::pb::FILE_DESCRIPTOR_SET).unwrap();
        let from_set = load(&[], &[], &[set]).unwrap().unwrap();
        assert_eq!(from_set.services, ["proto.KV"]);

        assert!(load(&[], &[], &[]).unwrap().is_none());
        let bad = load(&[dir.path().join("missing.proto")], &[], &[]).unwrap_err();
        assert!(bad.message.contains("--import-path"), "{}", bad.message);
        let not_set = dir.path().join("not-a-set");
        std::fs::write(&not_set, b"\xff\xff\xff").unwrap();
        assert!(
            load(&[], &[], &[not_set])
                .unwrap_err()
                .message
                .contains("protoc")
        );
    }
}
