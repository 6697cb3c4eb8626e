//! Each adapter's decode of its samples and encode of the canonical verdict, and the canonical
//! model's semantic validation, in bytes per second. `make bench` runs it; BENCHMARKS.md has the
//! figures.
//!
//! Besides criterion's figures it prints each decode's throughput measured side by side with a
//! plain `serde_json::Value` parse of the same canonical JSON in alternating rounds, because this
//! machine is shared and noisy (the target is at least 100 MB/s per adapter).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use jxg_adapters::Context;
use jxg_adapters::registry;
use jxg_schema::{MasterData, Message};

fn sample(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// (adapter, sample) pairs decoded by the gateway.
const DECODES: [(&str, &str); 4] = [
    ("police-json", "police/valid/anmeldelse-1.json"),
    ("court-xml", "court/valid/dom-1-latin1.xml"),
    ("prosecution-flat", "prosecution/valid/tilt-1.flat"),
    ("canonical", "canonical/valid/verdict.issued.json"),
];

/// Decodes `bytes` `n` times; bytes per second.
fn rate(n: usize, bytes: usize, f: impl Fn()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    (n * bytes) as f64 / t.elapsed().as_secs_f64()
}

/// Throughput of `ours` and of serde_json parsing `plain` into a `Value`, in five alternating
/// rounds of `n` runs each, printed with their ratio under `label`.
fn side_by_side(label: &str, n: usize, bytes: usize, ours: impl Fn(), plain: &[u8]) {
    let (mut a, mut b) = (0.0, 0.0);
    for _ in 0..5 {
        a += rate(n, bytes, &ours);
        b += rate(n, plain.len(), || {
            black_box(serde_json::from_slice::<serde_json::Value>(black_box(plain)).is_ok());
        });
    }
    println!(
        "  {label:<38} {:>7.1} MB/s   serde_json::Value {:>7.1} MB/s   ratio {:.2}",
        a / 5.0 / 1e6,
        b / 5.0 / 1e6,
        a / b
    );
}

fn main() {
    let md = MasterData::embedded();
    let ctx = Context { master_data: &md };
    let verdict: Message =
        serde_json::from_slice(&sample("canonical/valid/verdict.issued.json")).unwrap();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut g = c.benchmark_group("adapters");
    for (format, rel) in DECODES {
        let bytes = sample(rel);
        let adapter = registry::get(format).unwrap();
        adapter.decode(&bytes, &ctx).expect("the sample decodes");
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(format!("decode {format} ({rel})"), |b| {
            b.iter(|| adapter.decode(black_box(&bytes), &ctx).is_ok())
        });
    }
    for format in ["police-json", "court-xml", "prosecution-flat", "canonical"] {
        let adapter = registry::get(format).unwrap();
        let out = adapter.encode(&verdict, &ctx).expect("the verdict encodes");
        g.throughput(Throughput::Bytes(out.len() as u64));
        g.bench_function(format!("encode verdict as {format}"), |b| {
            b.iter(|| adapter.encode(black_box(&verdict), &ctx).is_ok())
        });
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("semantic validation of the verdict", |b| {
        b.iter(|| jxg_schema::validate::semantic(black_box(&verdict), &md).is_empty())
    });
    g.finish();
    c.final_summary();

    // side by side with serde_json parsing the canonical verdict to a Value
    let plain = sample("canonical/valid/verdict.issued.json");
    println!("\ndecode throughput, side by side with serde_json::Value on the canonical verdict:");
    for (format, rel) in DECODES {
        let bytes = sample(rel);
        let adapter = registry::get(format).unwrap();
        let decode = || {
            black_box(adapter.decode(black_box(&bytes), &ctx).is_ok());
        };
        side_by_side(format, 2_000, bytes.len(), decode, &plain);
    }
    // the strict JSON reader (a repeated member name refused, with its pointer) against
    // serde_json's own Value parse of the same bytes, alternating rounds
    println!("\nstrict JSON parse, side by side with serde_json::Value on the same document:");
    for rel in [
        "police/valid/anmeldelse-1.json",
        "canonical/valid/verdict.issued.json",
    ] {
        let bytes = sample(rel);
        let parse = || {
            black_box(jxg_adapters::canonical::parse_json(black_box(&bytes)).is_ok());
        };
        side_by_side(rel, 5_000, bytes.len(), parse, &bytes);
    }
}
