//! Rendering a 100,000-entry external dynamic list (one buffer, SHA-256
//! ETag), and validating values as they are added.
//!
//! `cargo bench -p riposte-firewall --bench edl`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use riposte_firewall::edl::{render, EdlKind};

fn entries(n: u32) -> Vec<String> {
    (0..n)
        .map(|i| match i % 3 {
            0 => format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255),
            1 => format!("2001:db8::{:x}", i),
            _ => format!("172.16.{}.0/24", i & 255),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let list = entries(100_000);
    let mut g = c.benchmark_group("edl");
    g.throughput(Throughput::Elements(list.len() as u64));
    g.bench_function("render_100k_ip", |b| {
        b.iter(|| black_box(render(list.iter().map(String::as_str))))
    });
    g.bench_function("normalize_100k_ip", |b| {
        b.iter(|| {
            for e in &list {
                let _ = black_box(EdlKind::Ip.normalize(e));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
