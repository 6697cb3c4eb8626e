//! `jxg-tools simulate` against the real binary on the real broker: every hop of the story reaches
//! every recipient in order with a signature that verifies, and the prison gets its documents
//! without the addresses its disclosure profile leaves out.

use jxg_tests::*;
use serde_json::Value;

#[tokio::test]
async fn the_simulated_story_reaches_every_recipient_in_order_with_what_prison_may_see() {
    let (home, p, (inq, outq, rejq)) = broker_home("simulate").await;
    // the courts' webhook is served by the simulation itself, on a port of its own
    let port = free_port();
    home.push_to("courts", &format!("https://127.0.0.1:{port}/jxg"));
    let gw = home.start();
    // the simulation reads the listeners from the configuration
    home.edit_config(|t| {
        let bound = |line: &str, addr: &str| line.replace("127.0.0.1:0", addr);
        t.lines()
            .map(|l| {
                if l.starts_with("authority = ") {
                    bound(l, &gw.authority)
                } else if l.starts_with("admin = ") {
                    bound(l, &gw.admin)
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    });
    let samples = samples_dir();
    let (code, out, err) = jxg_tools(
        &home,
        &[
            "simulate",
            "--config",
            "gateway.toml",
            "--samples",
            samples.to_str().unwrap(),
            "--report",
            "report.json",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("Every hop arrived and every signature verified."),
        "{out}"
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(home.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["ok"], true);
    let hops = report["hops"].as_array().unwrap();
    let types: Vec<&str> = hops.iter().map(|h| h["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "offence.reported",
            "person.arrested",
            "remand.ordered",
            "indictment.filed",
            "hearing.scheduled",
            "verdict.issued",
            "custody.admitted",
            "custody.released"
        ]
    );
    let recipients = |i: usize| -> Vec<String> {
        hops[i]["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["recipient"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(recipients(0), ["prosecution"]);
    assert_eq!(recipients(1), ["courts", "prosecution"]);
    assert_eq!(recipients(3), ["courts", "police"]);
    assert_eq!(recipients(5), ["police", "prison", "prosecution"]);
    for h in hops {
        for r in h["recipients"].as_array().unwrap() {
            assert_eq!(r["arrived"], true, "{h}");
            assert_eq!(r["verified"], true, "{h}");
        }
    }
    // ids in acceptance order
    let ids: Vec<&str> = hops.iter().map(|h| h["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    // the prison sees persons, hearings, custody and sentences, never an address
    let removed_for_prison = |i: usize| -> Vec<String> {
        hops[i]["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["recipient"] == "prison")
            .unwrap()["removed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["path"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(removed_for_prison(2), ["/body/person/address"]);
    assert_eq!(removed_for_prison(4), ["/body/persons/0/address"]);
    assert_eq!(removed_for_prison(5), ["/body/defendant/address"]);
    let timeline = &report["timeline"];
    assert_eq!(timeline["messages"].as_array().unwrap().len(), 5);
    assert_eq!(report["audit"]["status"], "ok");
    drop(gw);
    p.delete(&[&inq, &outq, &rejq]).await;
}

#[tokio::test]
async fn without_a_broker_the_simulation_says_what_it_leaves_out_and_plays_the_rest() {
    let home = Home::with_broker("simulate-nobroker");
    // nothing answers on this port: the prosecution's leg cannot run
    home.edit_config(|t| t.replace("127.0.0.1:5672", "127.0.0.1:9"));
    let port = free_port();
    home.push_to("courts", &format!("https://127.0.0.1:{port}/jxg"));
    let gw = home.start();
    home.edit_config(|t| {
        t.replacen("127.0.0.1:0", &gw.authority, 1)
            .replacen("127.0.0.1:0", &gw.admin, 1)
    });
    let samples = samples_dir();
    let (code, out, err) = jxg_tools(
        &home,
        &[
            "simulate",
            "--no-broker",
            "--samples",
            samples.to_str().unwrap(),
            "--report",
            "report.json",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("RabbitMQ is not running"), "{out}");
    assert!(out.contains("rabbitmq-server -detached"), "{out}");
    let report: Value =
        serde_json::from_slice(&std::fs::read(home.path().join("report.json")).unwrap()).unwrap();
    let hops = report["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 8);
    assert_eq!(hops[3]["skipped"], "no broker");
    for (i, h) in hops.iter().enumerate().filter(|(i, _)| *i != 3) {
        for r in h["recipients"].as_array().unwrap() {
            let arrived = r["arrived"] == true && r["verified"] == true;
            assert_eq!(arrived, r["recipient"] != "prosecution", "hop {i}: {r}");
        }
    }
}
