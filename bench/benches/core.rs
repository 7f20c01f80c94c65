//! In-process costs: AutoMTLS certificate generation per curve (go-plugin
//! uses P-521; goplug defaults to P-256) and handshake-line parsing.

use criterion::{Criterion, criterion_group, criterion_main};
use goplug::handshake::HandshakeLine;
use goplug::tls::{CertCurve, generate_auto_mtls_cert};

fn certificates(c: &mut Criterion) {
    let mut group = c.benchmark_group("automtls_cert");
    group.bench_function("p256", |b| {
        b.iter(|| generate_auto_mtls_cert(CertCurve::P256).unwrap())
    });
    group.bench_function("p521", |b| {
        b.iter(|| generate_auto_mtls_cert(CertCurve::P521).unwrap())
    });
    group.finish();
}

fn handshake(c: &mut Criterion) {
    let line = format!(
        "1|3|unix|/tmp/goplug-abc/plugin123/plugin.sock|grpc|{}",
        "Q".repeat(1300)
    );
    c.bench_function("handshake_parse", |b| {
        b.iter(|| HandshakeLine::parse(std::hint::black_box(&line)).unwrap())
    });
}

criterion_group!(benches, certificates, handshake);
criterion_main!(benches);
