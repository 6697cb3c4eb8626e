//! The cost of a full policy decision (authorize + minimise) for the verdict sample, next to the
//! cost of signing the copy it decides on. `make bench` runs it; BENCHMARKS.md has the figures.
//!
//! Besides criterion's figures it prints the ratio of the two measured side by side in one run
//! (alternating rounds), because this machine is shared and noisy.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::Criterion;
use jxg_adapters::Context;
use jxg_adapters::registry;
use jxg_gateway::policy::{Policies, Sources};
use jxg_gateway::signing::{DeliveryClaims, Signer};
use jxg_schema::{MasterData, Message};

struct Setup {
    policies: Policies,
    signer: Signer,
    verdict: Message,
    prison_copy: Vec<u8>,
}

fn setup() -> Setup {
    let authorities: BTreeMap<String, Vec<String>> = ["police", "prosecution", "courts", "prison"]
        .into_iter()
        .map(|a| (a.to_string(), vec![]))
        .collect();
    let policies = Policies::load(&Sources::embedded(), &authorities).expect("shipped policies");
    let signer = Signer::from_pem(
        jxg_gateway::certs::new_signing_key()
            .expect("a key")
            .as_bytes(),
    )
    .expect("a signer");
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/canonical/valid/verdict.issued.json");
    let verdict: Message = serde_json::from_slice(&std::fs::read(p).expect("the sample")).unwrap();
    let view = policies
        .minimise("prison", &verdict)
        .expect("prison may see it");
    let md = MasterData::embedded();
    let prison_copy = registry::get("canonical")
        .unwrap()
        .encode(&view.message, &Context { master_data: &md })
        .unwrap();
    Setup {
        policies,
        signer,
        verdict,
        prison_copy,
    }
}

/// Send check, then receive check and minimisation for the prison.
fn decide(s: &Setup) -> usize {
    s.policies.may_send("courts", &s.verdict).unwrap();
    s.policies
        .may_receive("prison", "courts", &s.verdict)
        .unwrap();
    s.policies
        .minimise("prison", &s.verdict)
        .unwrap()
        .removed
        .len()
}

fn sign(s: &Setup) -> usize {
    s.signer
        .detached(
            &s.prison_copy,
            DeliveryClaims {
                message_id: "0190b2a4-7c1e-7d2f-9a1b-2c3d4e5f6a7b",
                message_type: "verdict.issued",
                recipient: "prison",
                issued_at: 1_780_000_000,
            },
        )
        .unwrap()
        .len()
}

/// Alternating rounds of both, so that noise hits both alike; returns (decide, sign) per op.
fn side_by_side(s: &Setup) -> (Duration, Duration) {
    let (mut d, mut g) = (Duration::ZERO, Duration::ZERO);
    let n = 500;
    for _ in 0..10 {
        let t = Instant::now();
        for _ in 0..n {
            black_box(decide(s));
        }
        d += t.elapsed();
        let t = Instant::now();
        for _ in 0..n {
            black_box(sign(s));
        }
        g += t.elapsed();
    }
    (d / (10 * n), g / (10 * n))
}

fn main() {
    let s = setup();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut g = c.benchmark_group("policy");
    g.bench_function(
        "decision verdict→prison (authorize send+receive, minimise)",
        |b| b.iter(|| decide(black_box(&s))),
    );
    g.bench_function("authorize receive (decided before)", |b| {
        b.iter(|| {
            s.policies
                .may_receive("prison", "courts", black_box(&s.verdict))
                .is_ok()
        })
    });
    let facts = jxg_gateway::policy::Facts::of(&s.verdict, "courts");
    g.bench_function("authorize receive (Cedar evaluates)", |b| {
        b.iter(|| {
            s.policies
                .authorization()
                .receive_uncached("prison", black_box(&facts))
                .allowed
        })
    });
    g.bench_function("minimise only", |b| {
        b.iter(|| s.policies.minimise("prison", black_box(&s.verdict)).is_ok())
    });
    g.bench_function("ES256 detached signature of the prison copy", |b| {
        b.iter(|| sign(black_box(&s)))
    });
    g.finish();
    c.final_summary();
    let (d, g) = side_by_side(&s);
    println!(
        "side by side: decision {:.1} µs, signature {:.1} µs, decision/signature = {:.2}",
        d.as_secs_f64() * 1e6,
        g.as_secs_f64() * 1e6,
        d.as_secs_f64() / g.as_secs_f64()
    );
}
