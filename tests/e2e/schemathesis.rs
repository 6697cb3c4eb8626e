//! schemathesis (PyPI, installed by `make tools`) against both listeners of a throwaway gateway,
//! with fitting client certificates: no 500, and no status, content type or body the served
//! OpenAPI does not describe.

use std::process::Command;

use jxg_tests::*;

fn schemathesis() -> std::path::PathBuf {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/tools/venv/bin/schemathesis");
    assert!(
        p.exists(),
        "schemathesis is not installed at {}: `make tools` installs it",
        p.display()
    );
    p
}

fn run(home: &Home, base: &str, who: &str) {
    let certs = home.path().join("certs/dev");
    let out = Command::new(schemathesis())
        .current_dir(home.path())
        .env("NO_COLOR", "1")
        .args([
            "run",
            &format!("{base}/openapi.json"),
            "--tls-verify",
            certs.join("ca.pem").to_str().unwrap(),
            "--request-cert",
            certs.join(format!("{who}.pem")).to_str().unwrap(),
            "--request-cert-key",
            certs.join(format!("{who}-key.pem")).to_str().unwrap(),
            "--max-examples",
            "10",
            "--request-timeout",
            "10",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis as {who} on {base}:\n{text}"
    );
    assert!(text.contains("passed"), "{text}");
}

#[test]
fn schemathesis_finds_no_server_error_and_nothing_the_openapi_does_not_describe() {
    // long polls answer within a second, so that generated waits do not time out
    let home = Home::with_limits("inbox_max_wait_seconds = 1");
    let gw = home.start();
    run(&home, &format!("https://{}", gw.authority), "police");
    run(&home, &format!("https://{}", gw.admin), "operator");
    run(&home, &format!("https://{}", gw.admin), "auditor");
}
