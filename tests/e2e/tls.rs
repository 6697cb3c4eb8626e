//! Certificate lifecycle: revocation, and the server certificate, CA bundle and CRL read again
//! while the gateway runs, without a restart and without dropping open connections; who is
//! refused on each listener.

use std::time::{Duration, Instant};

use jxg_gateway::certs::{self, Issued, Validity};
use jxg_tests::*;

/// Issues a certificate of the home's CA carrying `san` and writes it as `certs/dev/<name>.pem`.
fn issue(home: &Home, name: &str, san: &str, validity: Validity) -> Issued {
    let (ca, ca_key) = home.cert("ca");
    let i = certs::issue(&ca, &ca_key, name, san, false, validity).unwrap();
    let d = home.path().join("certs/dev");
    std::fs::write(d.join(format!("{name}.pem")), &i.cert_pem).unwrap();
    std::fs::write(d.join(format!("{name}-key.pem")), &i.key_pem).unwrap();
    i
}

fn revoke(home: &Home, names: &[&str]) {
    let files: Vec<String> = names.iter().map(|n| format!("certs/dev/{n}.pem")).collect();
    let mut args = vec!["certs", "revoke", "--dir", "certs/dev"];
    args.extend(files.iter().map(String::as_str));
    let (code, out, err) = jxg(home, &args);
    assert_eq!(code, 0, "{out}{err}");
}

/// The home's configuration reading `certs/dev/crl.pem` and looking for changes every second.
fn with_crl(home: &Home) {
    home.edit_config(|t| {
        t.replace(
            "key = \"certs/dev/gateway-key.pem\"",
            "key = \"certs/dev/gateway-key.pem\"\ncrl = \"certs/dev/crl.pem\"\nreload_interval_seconds = 1",
        )
    });
}

/// `GET path` on a new connection presenting `who`: the status, or the refusal.
fn get(addr: &str, ca: &str, who: &Issued, path: &str) -> Result<u16, String> {
    TlsConn::open(addr, ca, (&who.cert_pem, &who.key_pem)).and_then(|mut c| c.get(path))
}

fn named(home: &Home, name: &str) -> Issued {
    let (cert_pem, key_pem) = home.cert(name);
    Issued { cert_pem, key_pem }
}

async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn revoked_expired_foreign_and_unmapped_certificates_are_refused_on_both_listeners() {
    let home = Home::new();
    let now = time::OffsetDateTime::now_utc();
    let expired = Validity {
        not_before: now - time::Duration::days(30),
        not_after: now - time::Duration::days(1),
    };
    let other = certs::new_ca("another CA", Validity::days(30)).unwrap();
    // per listener: the route, the certificate that belongs there, and the SAN it carries
    for (listener, route, owner, san) in [
        (
            "authority",
            "/v1/inbox",
            "police",
            "urn:jxg:authority:police",
        ),
        (
            "admin",
            "/admin/v1/policies",
            "operator",
            "urn:jxg:admin:operator",
        ),
    ] {
        let revoked = issue(&home, &format!("{owner}-revoked"), san, Validity::days(30));
        let old = issue(&home, &format!("{owner}-expired"), san, expired);
        let foreign = certs::issue(
            &other.cert_pem,
            &other.key_pem,
            owner,
            san,
            false,
            Validity::days(30),
        )
        .unwrap();
        let unmapped = issue(
            &home,
            &format!("{owner}-unmapped"),
            "urn:jxg:authority:tax",
            Validity::days(30),
        );
        revoke(&home, &[&format!("{owner}-revoked")]);
        let cases = [
            ("the owner", named(&home, owner), Ok(200)),
            ("a revoked certificate", revoked, Err(())),
            ("an expired certificate", old, Err(())),
            ("another CA's certificate", foreign, Err(())),
            (
                "a certificate of no registered authority or role",
                unmapped,
                Ok(403),
            ),
        ];
        with_crl(&home);
        let gw = home.start();
        let addr = if listener == "authority" {
            &gw.authority
        } else {
            &gw.admin
        };
        for (what, who, expected) in cases {
            let got = get(addr, &home.ca_pem(), &who, route);
            assert_eq!(
                got.as_ref().map(|s| *s).map_err(|_| ()),
                expected,
                "{what} on the {listener} listener: {got:?}"
            );
        }
        drop(gw);
        home.edit_config(|t| {
            t.replace(
                "crl = \"certs/dev/crl.pem\"\nreload_interval_seconds = 1\n",
                "",
            )
        });
    }
}

#[tokio::test]
async fn crl_server_certificate_and_ca_bundle_are_read_again_without_restart_or_dropped_connections()
 {
    let home = Home::new();
    let spare = issue(
        &home,
        "spare",
        "urn:jxg:authority:police",
        Validity::days(30),
    );
    revoke(&home, &["spare"]);
    with_crl(&home);
    let gw = home.start();
    let ca = home.ca_pem();
    let (police, prison, operator) = (
        named(&home, "police"),
        named(&home, "prison"),
        named(&home, "operator"),
    );
    assert_eq!(get(&gw.authority, &ca, &police, "/v1/inbox"), Ok(200));
    assert!(
        get(&gw.authority, &ca, &spare, "/v1/inbox").is_err(),
        "the revoked certificate got in"
    );
    // a connection held open across every change below
    let mut held = TlsConn::open(&gw.admin, &ca, (&operator.cert_pem, &operator.key_pem)).unwrap();
    assert_eq!(held.get("/healthz"), Ok(200));
    let first_serial = held.server_serial();

    // 1. the police certificate is revoked: new connections with it are refused, others are not
    revoke(&home, &["police"]);
    until("the revoked police certificate is refused", || {
        get(&gw.authority, &ca, &police, "/v1/inbox").is_err()
    })
    .await;
    assert_eq!(get(&gw.authority, &ca, &prison, "/v1/inbox"), Ok(200));

    // 2. a CRL that does not load is refused whole; the one in force stays
    std::fs::write(
        home.path().join("certs/dev/crl.pem"),
        "-----BEGIN X509 CRL-----\nnot one\n-----END X509 CRL-----\n",
    )
    .unwrap();
    until("the broken CRL is reported", || {
        gw.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("changed TLS files not loaded"))
    })
    .await;
    assert!(
        get(&gw.authority, &ca, &police, "/v1/inbox").is_err(),
        "a broken CRL let the revoked certificate in"
    );
    assert_eq!(get(&gw.authority, &ca, &prison, "/v1/inbox"), Ok(200));
    // a CRL the command cannot read is not overwritten
    let (code, _, err) = jxg(
        &home,
        &[
            "certs",
            "revoke",
            "--dir",
            "certs/dev",
            "certs/dev/spare.pem",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("crl.pem"), "{err}");
    std::fs::remove_file(home.path().join("certs/dev/crl.pem")).unwrap();
    revoke(&home, &["spare", "police"]);

    // 3. a new server certificate: new connections get it, the held one goes on
    let (ca_cert, ca_key) = home.cert("ca");
    let renewed = certs::issue(
        &ca_cert,
        &ca_key,
        "jxg gateway",
        "urn:jxg:gateway",
        true,
        Validity::days(90),
    )
    .unwrap();
    let d = home.path().join("certs/dev");
    std::fs::write(d.join("gateway-key.pem"), &renewed.key_pem).unwrap();
    std::fs::write(d.join("gateway.pem"), &renewed.cert_pem).unwrap();
    let new_serial = certs::serials(&renewed.cert_pem).unwrap()[0].clone();
    until("new connections get the renewed server certificate", || {
        TlsConn::open(&gw.admin, &ca, (&operator.cert_pem, &operator.key_pem))
            .is_ok_and(|c| c.server_serial() == new_serial)
    })
    .await;
    assert_ne!(first_serial, new_serial);
    assert_eq!(
        held.get("/healthz"),
        Ok(200),
        "the open connection was dropped"
    );
    assert_eq!(held.server_serial(), first_serial);

    // 4. a second CA joins the bundle: its certificates get in, the first CA's still do
    let second = certs::new_ca("second sector CA", Validity::days(365)).unwrap();
    let newcomer = certs::issue(
        &second.cert_pem,
        &second.key_pem,
        "prison",
        "urn:jxg:authority:prison",
        false,
        Validity::days(30),
    )
    .unwrap();
    assert!(
        get(&gw.authority, &ca, &newcomer, "/v1/inbox").is_err(),
        "a certificate of a CA not yet trusted got in"
    );
    // the CRL must decide every certificate of every CA in the bundle
    let crl_second = certs::crl(&second.cert_pem, &second.key_pem, &[], 1, 30).unwrap();
    let crl_first = std::fs::read_to_string(d.join("crl.pem")).unwrap();
    std::fs::write(d.join("crl.pem"), format!("{crl_first}{crl_second}")).unwrap();
    std::fs::write(d.join("ca.pem"), format!("{ca}{}", second.cert_pem)).unwrap();
    until("the second CA's certificate gets in", || {
        get(&gw.authority, &ca, &newcomer, "/v1/inbox") == Ok(200)
    })
    .await;
    assert_eq!(get(&gw.authority, &ca, &prison, "/v1/inbox"), Ok(200));
    assert!(get(&gw.authority, &ca, &police, "/v1/inbox").is_err());
    assert_eq!(
        held.get("/healthz"),
        Ok(200),
        "the open connection was dropped"
    );

    let samples = metrics(&home, &gw).await.1.samples;
    let reloads = |result: &str| {
        samples
            .iter()
            .find(|s| s.metric == "jxg_tls_reloads_total" && s.labels.get("result") == Some(result))
            .map_or(0.0, |s| match s.value {
                prometheus_parse::Value::Counter(v) => v,
                _ => 0.0,
            })
    };
    // revocation, the CRL again (maybe with the certificate), the certificate, the bundle
    assert!(reloads("loaded") >= 3.0, "loaded: {}", reloads("loaded"));
    assert!(reloads("refused") >= 1.0, "refused: {}", reloads("refused"));
}

#[tokio::test]
async fn readyz_warns_of_a_certificate_near_its_end_and_stays_ready() {
    let home = Home::new();
    home.edit_config(|t| {
        t.replace(
            "key = \"certs/dev/gateway-key.pem\"",
            "key = \"certs/dev/gateway-key.pem\"\nexpiry_warning_days = 100000",
        )
    });
    let gw = home.start();
    let r = client_for(&home, "operator")
        .get(gw.admin_url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    let warned: Vec<&str> = body["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["certificate"].as_str().unwrap())
        .collect();
    assert_eq!(warned, ["server", "ca"], "{body}");
    assert!(body["warnings"][0]["days_left"].as_i64().unwrap() > 700);
    // and none with the default threshold
    drop(gw);
    home.edit_config(|t| t.replace("\nexpiry_warning_days = 100000", ""));
    let gw = home.start();
    let body = get_json(&client_for(&home, "operator"), &gw.admin_url("/readyz")).await;
    assert_eq!(body["warnings"], serde_json::json!([]), "{body}");
}
