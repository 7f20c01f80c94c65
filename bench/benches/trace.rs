//! The per-call cost of trace propagation: one tiny unary call, Rust host
//! to Rust plugin in one process (`goplug::testing::connect`), over a Unix
//! socket. Run it twice, as `scripts/bench.sh` does: without features
//! (`grpc_unary/otel_off`) and with `--features otel`, which gives
//! `grpc_unary/otel_on` (goplug's `otel` feature, no subscriber: what every
//! call pays once the feature is compiled in) and `grpc_unary/otel_traced`
//! (an OpenTelemetry layer recording both sides' spans, no exporter).
//! Run it with `-p goplug-bench` alone: in a workspace build other crates
//! turn goplug's `otel` feature on for this bench too.

use criterion::{Criterion, criterion_group, criterion_main};
use goplug::host::{Channel, Client, PluginSet};
use goplug::plugin::{ServeConfig, Services};
use goplug_bench::pb::bench_client::BenchClient;
use goplug_bench::pb::bench_server::BenchServer;
use goplug_bench::{BenchService, HANDSHAKE, PLUGIN_NAME, TINY, pb};

fn connect(runtime: &tokio::runtime::Runtime) -> Client {
    runtime.block_on(async {
        let serve = ServeConfig::new(HANDSHAKE)
            .plugins(Services::new().grpc(PLUGIN_NAME, BenchServer::new(BenchService::default())));
        let plugins = PluginSet::new().grpc::<BenchClient<Channel>>(PLUGIN_NAME);
        goplug::testing::connect(serve, plugins).await.unwrap()
    })
}

fn call(runtime: &tokio::runtime::Runtime, bench: &mut BenchClient<Channel>) {
    runtime
        .block_on(bench.echo(pb::Payload {
            data: bytes::Bytes::from_static(TINY),
        }))
        .unwrap();
}

fn unary(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = connect(&runtime);
    let mut bench: BenchClient<Channel> = client.dispense_named(PLUGIN_NAME).unwrap();
    let mut group = c.benchmark_group("grpc_unary");
    let name = if cfg!(feature = "otel") {
        "otel_on"
    } else {
        "otel_off"
    };
    group.bench_function(name, |b| b.iter(|| call(&runtime, &mut bench)));
    #[cfg(feature = "otel")]
    {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::Layer as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        // Info and above, as README's subscriber: h2's own trace-level
        // spans would otherwise be recorded too.
        let subscriber = tracing_subscriber::registry().with(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("bench"))
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
        );
        // Host and plugin share this thread (a current-thread runtime), so
        // both sides' spans are recorded; a root span per call, as a
        // caller's own span would be.
        tracing::subscriber::with_default(subscriber, || {
            group.bench_function("otel_traced", |b| {
                b.iter(|| {
                    let _call = tracing::info_span!("caller").entered();
                    call(&runtime, &mut bench);
                })
            });
        });
    }
    group.finish();
    runtime.block_on(client.shutdown());
}

criterion_group!(benches, unary);
criterion_main!(benches);
