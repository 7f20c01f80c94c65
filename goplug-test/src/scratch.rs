//! A scratch area for one host test: a working directory for the plugin
//! and a socket directory, with the checks that nothing was left behind.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use goplug::host::{Channel, Client, ClientBuilder, PluginSet};
use goplug_example_kv::{HANDSHAKE, pb::kv_client::KvClient};

/// How long a killed plugin may take to disappear.
const GONE: Duration = Duration::from_secs(5);

/// A working directory (`work`) and a socket directory (`sockets`) in one
/// temporary directory, and the test plugin to launch in them.
#[derive(Debug)]
pub struct Scratch {
    _root: tempfile::TempDir,
    /// The plugin's working directory.
    pub work: PathBuf,
    /// The directory given to the host for the plugin's sockets.
    pub sockets: PathBuf,
    fake: PathBuf,
}

impl Scratch {
    /// A new scratch area; `fake_plugin` is the test plugin binary.
    pub fn new(fake_plugin: &str) -> Self {
        let root = tempfile::tempdir().expect("a temporary directory");
        let work = root.path().join("work");
        let sockets = root.path().join("sockets");
        std::fs::create_dir(&work).expect("the work directory");
        std::fs::create_dir(&sockets).expect("the socket directory");
        Self {
            _root: root,
            work,
            sockets,
            fake: PathBuf::from(fake_plugin),
        }
    }

    /// A path in the working directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.work.join(name)
    }

    /// Where the plugin writes its pid.
    pub fn pid_file(&self) -> PathBuf {
        self.path("pid")
    }

    /// The fake plugin in `mode`, writing its pid first.
    pub fn fake(&self, mode: &str) -> Command {
        self.fake_with_env(mode, &[])
    }

    /// The fake plugin in `mode` with extra environment variables.
    pub fn fake_with_env(&self, mode: &str, env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(&self.fake);
        command
            .arg("pid-file")
            .arg(self.pid_file())
            .arg(mode)
            .current_dir(&self.work)
            .envs(env.iter().copied());
        command
    }

    /// A shell script as the plugin; `$$` stays the plugin's pid through `exec`.
    pub fn script(&self, body: &str) -> Command {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(format!("echo $$ > '{}'; {body}", self.pid_file().display()))
            .current_dir(&self.work);
        command
    }

    /// A host for `command` with the KV plugin set and this socket directory.
    pub fn builder(&self, command: Command) -> ClientBuilder {
        Client::builder(HANDSHAKE)
            .plugins(PluginSet::new().grpc::<KvClient<Channel>>("kv"))
            .command(command)
            .unix_socket_dir(&self.sockets)
            .start_timeout(Duration::from_secs(20))
    }

    /// The plugin is gone (not even a zombie) and left no socket behind.
    pub async fn assert_clean(&self) {
        if self.pid_file().exists() {
            crate::process_gone(crate::read_pid(&self.pid_file()), GONE).await;
        }
        assert_eq!(
            crate::leftovers(&self.sockets),
            Vec::<PathBuf>::new(),
            "socket dir not empty"
        );
    }
}
