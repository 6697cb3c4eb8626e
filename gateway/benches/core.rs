//! The per-message costs besides the adapters and the policy decision: JSON Schema validation of
//! a canonical message, ES256 signing (a delivery's detached signature and a receipt), and a
//! store commit batch (accepting a message with its outbox entries and audit entries in one
//! transaction, then the fsync that covers the batch). `make bench` runs it; BENCHMARKS.md has
//! the figures.
//!
//! After criterion's figures it prints, side by side in alternating rounds, the cost per message
//! of a commit batch of 1, 10 and 100 against one ES256 signature, because this machine is shared
//! and noisy.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use jxg_gateway::audit::{Event, Record};
use jxg_gateway::pipeline::{Meta, PreparedCopy};
use jxg_gateway::signing::{DeliveryClaims, Signer};
use jxg_gateway::store::{AcceptOutcome, Acceptance, SledEngine, Store, StoredMessage};
use jxg_schema::schema::{Form, check};
use serde_json::{Value, json};
use uuid::Uuid;

fn sample(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// An accepted verdict as the pipeline writes it: the message, three recipients' copies with
/// their signatures, and the audit entries of the acceptance.
fn acceptance(n: u64, verdict: &str, copy: &str, signature: &str) -> Acceptance {
    let id = Uuid::now_v7();
    let subjects = vec!["a1b2c3d4e5f60718".to_string()];
    let recipients = ["police", "prosecution", "prison"];
    let about = |e| {
        Record::new(e, "gateway")
            .message(id, "verdict.issued", Some("criminal-proceedings"))
            .subjects(&subjects)
    };
    let mut audit = vec![about(Event::Received).detail("3 recipient(s), 0 skipped")];
    let mut entries = Vec::new();
    for r in recipients {
        audit.push(about(Event::Decided).recipient(r).detail("permit"));
        audit.push(about(Event::Signed).recipient(r).detail("kid bench"));
        audit.push(about(Event::Queued).recipient(r).detail("canonical"));
        let case = format!("1470-76543-{:05}-26", 1 + n % 99_999);
        entries.push(
            PreparedCopy {
                bytes: copy.as_bytes().to_vec(),
                format: "canonical".into(),
                media_type: "application/json".into(),
                signature: signature.into(),
                alterations: vec![],
                removed: vec![],
                subjects: subjects.clone(),
                permitted_by: vec![],
            }
            .entry(
                &Meta {
                    message_id: id,
                    seq: n,
                    message_type: "verdict.issued",
                    correlation_id: &case,
                    received_at: "2026-06-15T12:31:00Z",
                    traceparent: None,
                },
                r,
            ),
        );
    }
    Acceptance {
        message: StoredMessage {
            id,
            seq: n,
            sender: "courts".into(),
            message_type: "verdict.issued".into(),
            source_document_id: format!("DOM-2026-{n:09}"),
            received_at: "2026-06-15T12:31:00Z".into(),
            correlation_id: format!("1470-76543-{:05}-26", 1 + n % 99_999),
            body_sha256: "x".repeat(43),
            response: json!({"id": id.to_string(), "status": "accepted", "receipt": signature}),
            canonical: verdict.into(),
            subjects: subjects.clone(),
            skipped: vec![],
            traceparent: None,
            sender_signature: None,
            policy_digest: "0".repeat(64),
        },
        acts_on: None,
        erase: false,
        entries,
        audit,
    }
}

/// Sends `batch` acceptances to the store's writer at once and waits for all their answers
/// (each answered after the write that covers it is durable).
fn commit(
    store: &Store,
    rt: &tokio::runtime::Runtime,
    next: &AtomicU64,
    batch: usize,
    parts: &(String, String, String),
) -> Duration {
    let batch: Vec<Acceptance> = (0..batch)
        .map(|_| {
            acceptance(
                next.fetch_add(1, Ordering::Relaxed),
                &parts.0,
                &parts.1,
                &parts.2,
            )
        })
        .collect();
    let t = Instant::now();
    let outcomes = rt.block_on(futures_util::future::join_all(
        batch.into_iter().map(|a| store.accept(a)),
    ));
    let took = t.elapsed();
    for o in outcomes {
        assert!(matches!(o, Ok(AcceptOutcome::Accepted)), "{o:?}");
    }
    took
}

fn open(rt: &tokio::runtime::Runtime, dir: &Path, fsync: bool) -> Store {
    let engine = if fsync {
        SledEngine::open(dir, 64)
    } else {
        // the commit path's own cost: neither the log nor the body keys synced
        SledEngine::open_unsynced(dir, 64)
    }
    .unwrap();
    rt.block_on(Store::open(Arc::new(engine), Default::default()))
        .unwrap()
}

fn main() {
    let signer = Signer::from_pem(
        jxg_gateway::certs::new_signing_key()
            .expect("a key")
            .as_bytes(),
    )
    .expect("a signer");
    let verdict_bytes = sample("canonical/valid/verdict.issued.json");
    let verdict_text = String::from_utf8(verdict_bytes.clone()).unwrap();
    let verdict: Value = serde_json::from_slice(&verdict_bytes).unwrap();
    let admitted: Value =
        serde_json::from_slice(&sample("canonical/valid/custody.admitted.json")).unwrap();
    assert!(check(Form::Submission, &admitted).is_empty());
    let mut stored = verdict.clone();
    stored["id"] = json!("0192f000-0000-7000-8000-000000000000");
    stored["received_at"] = json!("2026-06-15T12:31:00Z");
    let stored_ok = check(Form::Stored, &stored).is_empty();
    let claims = || DeliveryClaims {
        message_id: "0192f000-0000-7000-8000-000000000000",
        message_type: "verdict.issued",
        recipient: "prison",
        issued_at: 1_781_526_660,
    };
    let signature = signer.detached(&verdict_bytes, claims()).unwrap();
    // the canonical copy is the verdict itself
    let parts = (verdict_text.clone(), verdict_text, signature);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (dir, bare) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = open(&rt, dir.path(), true);
    let unsynced = open(&rt, bare.path(), false);
    let next = Arc::new(AtomicU64::new(1));

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Bytes(verdict_bytes.len() as u64));
    g.bench_function(
        "schema validation, submission form (custody.admitted)",
        |b| b.iter(|| check(Form::Submission, black_box(&admitted)).is_empty()),
    );
    if stored_ok {
        g.bench_function("schema validation, stored form (verdict.issued)", |b| {
            b.iter(|| check(Form::Stored, black_box(&stored)).is_empty())
        });
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("ES256 detached signature of a delivered copy", |b| {
        b.iter(|| signer.detached(black_box(&verdict_bytes), claims()).is_ok())
    });
    // what sealing adds per body at rest (a message holds its canonical form and a copy per
    // recipient), beside one signature
    let body_key = jxg_gateway::store::BodyKey::generate();
    let body_id = Uuid::now_v7();
    let sealed = jxg_gateway::store::seal::seal(&body_key, &body_id, "canonical", &verdict_bytes);
    g.bench_function("seal a verdict body (LZ4 + AES-256-GCM)", |b| {
        b.iter(|| {
            jxg_gateway::store::seal::seal(
                &body_key,
                &body_id,
                "canonical",
                black_box(&verdict_bytes),
            )
        })
    });
    g.bench_function("open a sealed verdict body", |b| {
        b.iter(|| {
            jxg_gateway::store::seal::open(
                Some(&body_key),
                &body_id,
                "canonical",
                black_box(&sealed),
            )
        })
    });
    g.bench_function("ES256 receipt (compact JWS)", |b| {
        let receipt =
            json!({"id": "0192f000-0000-7000-8000-000000000000", "type": "verdict.issued"});
        b.iter(|| signer.receipt(black_box(&receipt)).is_ok())
    });
    for batch in [1usize, 10, 100] {
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_function(
            format!("store commit batch of {batch} (3 recipients each)"),
            |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| commit(&store, &rt, &next, batch, &parts))
                        .sum()
                })
            },
        );
    }
    for batch in [1usize, 100] {
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_function(
            format!("store commit path, batch of {batch}, nothing synced"),
            |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| commit(&unsynced, &rt, &next, batch, &parts))
                        .sum()
                })
            },
        );
    }
    g.finish();
    c.final_summary();

    // side by side: a message's share of a commit batch against one signature
    println!(
        "\nstore commit per message, side by side with one ES256 signature (alternating rounds):"
    );
    for batch in [1usize, 10, 100] {
        let (mut synced_t, mut bare_t, mut sign_t, mut messages, mut signatures) =
            (Duration::ZERO, Duration::ZERO, Duration::ZERO, 0u64, 0u64);
        for _ in 0..5 {
            for _ in 0..(200 / batch).max(2) {
                synced_t += commit(&store, &rt, &next, batch, &parts);
                bare_t += commit(&unsynced, &rt, &next, batch, &parts);
                messages += batch as u64;
            }
            let t = Instant::now();
            for _ in 0..200 {
                let _ = black_box(signer.detached(&verdict_bytes, claims()));
            }
            sign_t += t.elapsed();
            signatures += 200;
        }
        let per_message = synced_t.as_secs_f64() / messages as f64;
        let per_signature = sign_t.as_secs_f64() / signatures as f64;
        println!(
            "  batch {batch:>3}: {:>8.1} µs per message = {:>6.2} signatures (nothing synced {:.1} µs)",
            per_message * 1e6,
            per_message / per_signature,
            bare_t.as_secs_f64() * 1e6 / messages as f64,
        );
    }
}
