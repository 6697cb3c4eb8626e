//! `jxg-tools bench` drives the real binary over mutual TLS, measures the machine's limit in the same
//! run and reports every result against it; nothing it sends is lost. Nothing here asserts a
//! speed: the figures are checked for what they must be, whatever the machine.

use jxg_tests::*;
use serde_json::Value;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn bench_reports_every_workload_against_the_limit_and_loses_nothing() {
    let home = Home::new();
    let samples = samples_dir().display().to_string();
    let (code, out, err) = jxg_tools(
        &home,
        &[
            "bench",
            "--config",
            "gateway.toml",
            "--samples",
            &samples,
            "--seconds",
            "1",
            "--connections",
            "2",
            "--backlog",
            "300",
            "--postgres",
            jxg_tests::postgres::SERVER,
            "--report",
            "report.json",
        ],
    );
    assert_eq!(code, 0, "jxg-tools bench failed:\n{out}\n{err}");
    let r: Value =
        serde_json::from_slice(&std::fs::read(home.path().join("report.json")).unwrap()).unwrap();
    let rate = |v: &Value| v["rate"].as_f64().unwrap();
    let no_errors = |v: &Value, what: &str| {
        assert_eq!(v["errors"], serde_json::json!({}), "{what}: {v}");
        assert!(v["ok"].as_u64().unwrap() > 0, "{what} did nothing: {v}");
    };

    // the machine's limit, measured in the same run
    let s = r["sign_rate"].as_f64().unwrap();
    assert!(s > 0.0);
    no_errors(&r["http"], "the trivial handler");
    let r_http = rate(&r["http"]);

    // each workload, against L = 1 / (1/R_http + k/S)
    let workloads = r["workloads"].as_array().unwrap();
    let names: Vec<&str> = workloads
        .iter()
        .map(|w| w["workload"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["police", "court", "canonical"]);
    for w in workloads {
        let name = w["workload"].as_str().unwrap();
        let k = w["signatures_per_message"].as_u64().unwrap();
        let expected_k = match name {
            // the receipt, and one copy per recipient: the report goes to the prosecution, the
            // verdict to three authorities, the admission to two
            "police" => 2,
            "court" => 4,
            _ => 3,
        };
        assert_eq!(k, expected_k, "{name}: signatures per message");
        let limit = 1.0 / (1.0 / r_http + k as f64 / s);
        assert!(close(w["limit"].as_f64().unwrap(), limit), "{name}: L");
        no_errors(&w["flat_out"], name);
        no_errors(&w["at_half_rate"], name);
        let flat = rate(&w["flat_out"]);
        assert!(close(w["ratio_to_limit"].as_f64().unwrap(), flat / limit));
        assert!(close(w["ratio_to_http"].as_f64().unwrap(), flat / r_http));
        // the fixed-rate run keeps to its schedule: never more requests than were due
        let half = w["half_rate"].as_f64().unwrap();
        assert!(close(half, (flat / 2.0).max(1.0)));
        let sent = w["at_half_rate"]["requests"].as_u64().unwrap() as f64;
        assert!(
            sent <= (half * 1.0).ceil() + 1.0,
            "{name}: {sent} sent at {half}/s for 1 s"
        );
        for q in ["p50_ms", "p99_ms", "p999_ms", "max_ms"] {
            assert!(w["at_half_rate"]["latency"][q].as_f64().unwrap() > 0.0);
        }
        // where the time went, from the gateway's own stage histograms
        for stage in ["decode", "validate", "authorize", "encode", "sign", "store"] {
            assert!(
                w["stage_us"][stage].as_f64().is_some_and(|us| us > 0.0),
                "{name}: no time in {stage}: {}",
                w["stage_us"]
            );
        }
        let p = &w["at_half_rate"]["latency"];
        assert!(p["p50_ms"].as_f64() <= p["p99_ms"].as_f64());
        assert!(p["p99_ms"].as_f64() <= p["p999_ms"].as_f64());
    }

    // the prosecution's consumer took every police report the gateway accepted, once
    let police = &workloads[0];
    let inbox = &r["inbox"];
    no_errors(&inbox["run"], "the inbox consumer");
    assert_eq!(inbox["run"]["ok"], police["accepted"], "{inbox}");
    assert!(close(
        inbox["ratio_to_ingest"].as_f64().unwrap(),
        rate(&inbox["run"]) / rate(&police["flat_out"])
    ));

    // the backlog: written, held, started on and drained whole
    let b = &r["backlog"];
    assert_eq!(b["messages"], 300);
    // police reports go on being accepted with the backlog stored, against the empty store's rate
    no_errors(&b["police_flat_out"], "police with the backlog stored");
    assert!(close(
        b["ingest_ratio_to_empty"].as_f64().unwrap(),
        rate(&b["police_flat_out"]) / rate(&police["flat_out"])
    ));
    let ingested = b["ingested"].as_u64().unwrap();
    assert!(ingested >= b["police_flat_out"]["ok"].as_u64().unwrap() && ingested > 0);
    assert_eq!(b["drain"]["run"]["ok"], 300 + ingested, "{b}");
    no_errors(&b["drain"]["run"], "the backlog consumer");
    for k in [
        "startup_seconds",
        "rss_mib_at_start",
        "peak_rss_mib",
        "store_mib",
    ] {
        assert!(b[k].as_f64().unwrap() > 0.0, "{k}: {b}");
    }

    // the police workload with the store in PostgreSQL, in the same run, against L and the
    // configured engine; everything it accepted drained
    let pg = &r["postgres"];
    no_errors(&pg["police_flat_out"], "police on PostgreSQL");
    assert!(close(
        pg["ratio_to_configured"].as_f64().unwrap(),
        rate(&pg["police_flat_out"]) / rate(&police["flat_out"])
    ));
    assert!(close(
        pg["ratio_to_limit"].as_f64().unwrap(),
        rate(&pg["police_flat_out"]) / police["limit"].as_f64().unwrap()
    ));
    assert_eq!(pg["drain"]["run"]["ok"], pg["accepted"], "{pg}");
    assert!(out.contains("the store in PostgreSQL"), "{out}");
    // two nodes on one database, side by side with one node on it and the configured engine
    let two = &pg["two_nodes"];
    let nodes = two["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    for n in nodes {
        no_errors(n, "police on one of two nodes");
    }
    let both: f64 = nodes.iter().map(rate).sum();
    assert!(close(two["rate"].as_f64().unwrap(), both));
    assert!(close(
        two["ratio_to_configured"].as_f64().unwrap(),
        both / rate(&police["flat_out"])
    ));
    assert!(close(
        two["ratio_to_one_node"].as_f64().unwrap(),
        both / rate(&pg["police_flat_out"])
    ));
    // a node lost with pushes in flight: everything accepted reached the webhook, and the gap
    // is reported against the lease
    let loss = &pg["node_loss"];
    assert!(loss["accepted"].as_u64().unwrap() > 0, "{loss}");
    assert_eq!(loss["delivered"], loss["accepted"], "{loss}");
    assert!(close(
        loss["gap_to_lease"].as_f64().unwrap(),
        loss["longest_gap_seconds"].as_f64().unwrap() / loss["lease_seconds"].as_f64().unwrap()
    ));
    assert!(out.contains("two nodes on one database"), "{out}");
    assert!(out.contains("a node SIGKILLed"), "{out}");

    // the text report says the same
    assert!(out.contains("of L"), "{out}");
    assert!(out.contains("R_http"), "{out}");
}
