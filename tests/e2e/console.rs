//! The console in a real browser (`tests/console/console.mjs`: Debian's chromium driven by
//! Playwright, with axe-core; `make tools` installs them): after the sample story and a dead
//! letter made here, the operator sees the counts, replays the dead letter and follows the case;
//! the auditor finds the defendant by CPR number; an authority's certificate gets 403. Every
//! admin API call the console made must be a route of the admin OpenAPI.

use std::path::{Path, PathBuf};
use std::process::Command;

use jxg_tests::*;
use serde_json::{Value, json};

/// The defendant of the sample story.
const CPR: &str = "0104909995";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where `make tools` put playwright-core and axe-core.
fn node_modules() -> PathBuf {
    let p = repo().join("target/tools/console/node_modules");
    assert!(
        p.join("playwright-core").exists() && p.join("axe-core").exists(),
        "playwright-core and axe-core are not installed in {}: `make tools` installs them",
        p.display()
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: `make tools` installs Debian's chromium"
    );
    p
}

async fn get(c: &reqwest::Client, gw: &Gateway, path: &str) -> Value {
    let r = c.get(gw.admin_url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

/// Whether `call` (`GET /admin/v1/messages/0190…`) is a route and method of the admin OpenAPI.
fn described(openapi: &Value, call: &str) -> bool {
    let (method, path) = call.split_once(' ').unwrap();
    let parts: Vec<&str> = path.split('/').collect();
    openapi["paths"]
        .as_object()
        .unwrap()
        .iter()
        .any(|(t, ops)| {
            let template: Vec<&str> = t.split('/').collect();
            template.len() == parts.len()
                && template
                    .iter()
                    .zip(&parts)
                    .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
                && ops.get(method.to_lowercase()).is_some()
        })
}

#[tokio::test]
async fn the_console_in_a_browser_shows_the_story_replays_a_dead_letter_and_answers_the_auditor() {
    let modules = node_modules();
    let home = Home::new();
    let hook = Webhook::start(&home, Mode::Ok);
    home.push_to("courts", &hook.url);
    home.delivery(&[
        ("retry_base_ms", "20"),
        ("retry_cap_ms", "50"),
        ("max_attempts", "2"),
        ("breaker_failures", "100"),
    ]);
    let gw = home.start();
    let story = play_story(&home, &gw).await;
    let operator = client_for(&home, "operator");
    // the story's copies for the courts are pushed before the webhook starts failing
    for _ in 0..400 {
        let a = get(&operator, &gw, "/admin/v1/authorities").await;
        let courts = a["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == "courts")
            .unwrap()
            .clone();
        if courts["waiting"] == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    hook.set(Mode::Always(500));
    let prosecution = client_for(&home, "prosecution");
    let m = submission("canonical/valid/indictment.filed.json", "ANK-CONSOLE-1");
    let dead = accepted_id(post_json(&prosecution, &gw, "/v1/messages", m.to_string()).await).await;
    let mut listed = false;
    for _ in 0..400 {
        let d = get(&operator, &gw, "/admin/v1/dead-letters").await;
        if d["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["message_id"] == dead.as_str())
        {
            listed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(listed, "the test's dead letter");
    hook.set(Mode::Ok);

    // what the console must show, read from the admin API
    let first = get(&operator, &gw, &format!("/admin/v1/messages/{}", story[0])).await;
    let case = first["correlation_id"].as_str().unwrap().to_string();
    let mut in_case = Vec::new();
    for id in story.iter().chain([&dead]) {
        let m = get(&operator, &gw, &format!("/admin/v1/messages/{id}")).await;
        if m["correlation_id"] == case.as_str() {
            in_case.push(id.clone());
        }
    }
    let authorities = get(&operator, &gw, "/admin/v1/authorities").await;
    let mut accepted = serde_json::Map::new();
    for a in authorities["items"].as_array().unwrap() {
        let mut n = 0;
        for id in story.iter().chain([&dead]) {
            let m = get(&operator, &gw, &format!("/admin/v1/messages/{id}")).await;
            if m["sender"] == a["id"] {
                n += 1;
            }
        }
        accepted.insert(a["name"].as_str().unwrap().to_string(), json!(n));
    }
    let auditor = client_for(&home, "auditor");
    let access: Value = auditor
        .post(gw.admin_url("/admin/v1/audit/subject-access"))
        .header("Content-Type", "application/json")
        .body(json!({ "cpr": CPR }).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut disclosures: Vec<Value> = access["disclosures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| json!({"recipient": d["recipient"], "message_id": d["message_id"]}))
        .collect();
    assert!(!disclosures.is_empty(), "{access}");
    // the dead letter (an indictment of the same defendant) is disclosed once the console's
    // replay delivers it, before the auditor asks
    assert!(!disclosures.iter().any(|d| d["message_id"] == dead.as_str()));
    disclosures.push(json!({"recipient": "courts", "message_id": dead}));

    let certs = home.path().join("certs/dev");
    let cert = |who: &str| {
        json!({
            "cert": certs.join(format!("{who}.pem")),
            "key": certs.join(format!("{who}-key.pem")),
        })
    };
    let out = repo().join("target/console");
    let cfg = json!({
        "admin": format!("https://{}", gw.admin),
        "modules": modules,
        "out": out,
        "certs": {"operator": cert("operator"), "auditor": cert("auditor"), "police": cert("police")},
        "accepted": accepted,
        "case": case,
        "storyIds": in_case,
        "dead": {"id": dead, "recipient": "courts"},
        "explainRecipient": "prison",
        "cpr": CPR,
        "disclosures": disclosures,
    });
    let run = Command::new("node")
        .arg(repo().join("tests/console/console.mjs"))
        .env("JXG_CONSOLE", cfg.to_string())
        // Playwright's own connection to the gateway (it presents the client certificate)
        // trusts the development CA
        .env("NODE_EXTRA_CA_CERTS", certs.join("ca.pem"))
        .output()
        .expect("node runs (Node.js 20 or later)");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "the browser checks failed:\n{stderr}\n{stdout}"
    );
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the report of console.mjs: {e}: {stdout}"));

    // the replay the console made reached the webhook
    hook.wait_until("the replayed copy", |h| {
        h.delivered()
            .iter()
            .any(|r| r.message_id == dead && r.status == 200)
    })
    .await;
    // and was audited with the operator's identity (a new connection: the one kept from
    // before the browser ran was closed by the listener while idle)
    let auditor = client_for(&home, "auditor");
    let log = get(&auditor, &gw, &format!("/admin/v1/audit?message_id={dead}")).await;
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "replayed" && e["actor"] == "admin:operator"),
        "{log}"
    );

    // every call the console made is an admin route the OpenAPI describes
    let openapi: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("gateway/openapi/admin.json")).unwrap(),
    )
    .unwrap();
    let calls: Vec<&str> = report["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for must in [
        "GET /admin/v1/session",
        "GET /admin/v1/overview",
        "POST /admin/v1/audit/subject-access",
        "POST /admin/v1/audit/verifications",
    ] {
        assert!(
            calls.contains(&must),
            "the console called {must}: {calls:?}"
        );
    }
    for c in &calls {
        assert!(described(&openapi, c), "{c} is not in the admin OpenAPI");
    }
    for page in [
        "overview",
        "messages",
        "message",
        "dead-letters",
        "case",
        "policies",
        "audit",
    ] {
        assert!(
            out.join(format!("{page}.png")).exists(),
            "a screenshot of {page}"
        );
    }
}
