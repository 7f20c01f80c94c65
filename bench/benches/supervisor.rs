//! The supervisor's cost per call: one unary KV call to a Rust KV plugin
//! process (`kv-rust-grpc`), through a bare client's channel
//! (`kv_unary/bare`) and through a supervised plugin's channel
//! (`kv_unary/supervised`), which picks the current process per call and
//! counts the call. Needs `cargo build --release -p goplug-example-kv`
//! first (`scripts/bench.sh` does it), or `GOPLUG_BENCH_KV_PLUGIN` naming
//! the plugin.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use goplug::host::supervisor::{RestartPolicy, Supervisor};
use goplug::host::{Channel, Client, ClientBuilder, GrpcPlugin, PluginSet};
use goplug_example_kv::HANDSHAKE;
use goplug_example_kv::pb::{self, kv_client::KvClient};

const KV: GrpcPlugin<KvClient<Channel>> = GrpcPlugin::new("kv");

/// The Rust KV plugin next to this bench's build (`target/release`).
fn kv_plugin() -> PathBuf {
    if let Some(path) = std::env::var_os("GOPLUG_BENCH_KV_PLUGIN") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("the bench's own path");
    let release = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the bench runs from target/<profile>/deps");
    let plugin = release.join("kv-rust-grpc");
    assert!(
        plugin.exists(),
        "{} is missing: run `cargo build --release -p goplug-example-kv` first",
        plugin.display()
    );
    plugin
}

fn builder(plugin: &PathBuf, work: &std::path::Path) -> ClientBuilder {
    let mut command = std::process::Command::new(plugin);
    command.current_dir(work);
    Client::builder(HANDSHAKE)
        .plugins(PluginSet::new().plugin(KV))
        .command(command)
}

fn get(runtime: &tokio::runtime::Runtime, kv: &mut KvClient<Channel>) {
    runtime
        .block_on(kv.get(pb::GetRequest { key: "k".into() }))
        .unwrap();
}

fn unary(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let plugin = kv_plugin();
    let work = tempfile::tempdir().unwrap();
    let (bare, supervisor, supervised) = runtime.block_on(async {
        let bare = builder(&plugin, work.path()).start().await.unwrap();
        let supervisor = Supervisor::new();
        let recipe = {
            let (plugin, work) = (plugin.clone(), work.path().to_owned());
            move || builder(&plugin, &work)
        };
        let supervised = supervisor.supervise("kv", RestartPolicy::default(), recipe);
        supervised
            .wait_serving(Duration::from_secs(10))
            .await
            .unwrap();
        (bare, supervisor, supervised)
    });
    let mut bare_kv = bare.dispense(KV).unwrap();
    let mut supervised_kv = supervised.dispense(KV).unwrap();
    runtime
        .block_on(bare_kv.put(pb::PutRequest {
            key: "k".into(),
            value: b"v".to_vec(),
        }))
        .unwrap();
    let mut group = c.benchmark_group("kv_unary");
    group.bench_function("bare", |b| b.iter(|| get(&runtime, &mut bare_kv)));
    group.bench_function("supervised", |b| {
        b.iter(|| get(&runtime, &mut supervised_kv))
    });
    group.finish();
    runtime.block_on(async {
        bare.shutdown().await;
        supervisor.shutdown(Duration::from_secs(10)).await;
    });
}

criterion_group!(benches, unary);
criterion_main!(benches);
