#!/usr/bin/env python3
"""`make audit-tls`: scans both listeners of a gateway of its own with sslyze, an independent
TLS scanner, and fails on any finding.

The gateway runs from `target/debug/jxg` on a copy of gateway.toml in a temporary folder (its own
development certificates, store and free ports). Each listener is scanned twice: without a client
certificate (the server must require one) and with the certificate that belongs there (police on
the authority listener, operator on the admin listener), for every protocol from SSL 2.0 to
TLS 1.3, renegotiation, compression, Heartbleed, CCS injection, ROBOT, early data and the
server's certificate checked against the sector CA. The JSON reports go to target/audit-tls/.

Usage: audit-tls.py SSLYZE JXG
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sslyze, jxg = (os.path.abspath(a) for a in sys.argv[1:3])
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out_dir = os.path.join(root, "target", "audit-tls")
os.makedirs(out_dir, exist_ok=True)
AEAD = re.compile(r"_GCM_|CHACHA20_POLY1305|_CCM")
LEGACY = ["ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1"]
findings = []


def scan(target, name, cert=None, key=None, ca=None):
    path = os.path.join(out_dir, f"{name}.json")
    args = [sslyze, "--quiet", "--json_out", path]
    if cert:
        args += ["--cert", cert, "--key", key, "--certinfo", "--certinfo_ca_file", ca,
                 "--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3",
                 "--reneg", "--compression", "--heartbleed", "--openssl_ccs", "--robot",
                 "--early_data", "--elliptic_curves"]
    else:
        args += ["--tlsv1_3"]
    args.append(target)
    done = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0 or not os.path.exists(path):
        sys.exit(f"audit-tls: {name}: sslyze failed:\n{done.stdout}")
    result = json.load(open(path))["server_scan_results"][0]
    if result["connectivity_status"] != "COMPLETED":
        sys.exit(f"audit-tls: {name}: sslyze could not connect: {result['connectivity_error_trace']}")
    return result


def check(listener, bare, full):
    def finding(text):
        findings.append(f"{listener}: {text}")

    need = bare["connectivity_result"]["client_auth_requirement"]
    if need != "REQUIRED":
        finding(f"client certificate {need}, not REQUIRED")
    r = full["scan_result"]
    for cmd in r.values():
        if cmd and cmd["status"] != "COMPLETED" and cmd["status"] != "NOT_SCHEDULED":
            finding(f"a scan did not complete: {cmd['error_reason']}")
    for v in LEGACY:
        accepted = r[f"{v}_cipher_suites"]["result"]["accepted_cipher_suites"]
        if accepted:
            finding(f"{v} accepted ({len(accepted)} suites)")
    suites = []
    for v in ["tls_1_2", "tls_1_3"]:
        for s in r[f"{v}_cipher_suites"]["result"]["accepted_cipher_suites"]:
            name = s["cipher_suite"]["name"]
            suites.append(name)
            if not AEAD.search(name):
                finding(f"non-AEAD suite {name}")
    if not r["tls_1_3_cipher_suites"]["result"]["accepted_cipher_suites"]:
        finding("TLS 1.3 not offered")
    reneg = r["session_renegotiation"]["result"]
    if reneg["is_vulnerable_to_client_renegotiation_dos"] or reneg["client_renegotiations_success_count"]:
        finding("client-initiated renegotiation accepted")
    if r["tls_compression"]["result"]["supports_compression"]:
        finding("TLS compression")
    if r["heartbleed"]["result"]["is_vulnerable_to_heartbleed"]:
        finding("Heartbleed")
    if r["openssl_ccs_injection"]["result"]["is_vulnerable_to_ccs_injection"]:
        finding("CCS injection")
    robot = r["robot"]["result"]["robot_result"]
    if robot.startswith("VULNERABLE"):
        finding(f"ROBOT: {robot}")
    if r["tls_1_3_early_data"]["result"]["supports_early_data"]:
        finding("0-RTT early data accepted")
    deployment = r["certificate_info"]["result"]["certificate_deployments"][0]
    ours = [p for p in deployment["path_validation_results"] if p["trust_store"]["name"] == "Supplied CA file"]
    if not ours or not ours[0]["was_validation_successful"]:
        finding("the server certificate does not validate against the sector CA: "
                + (ours[0]["validation_error"] if ours else "no result"))
    curves = r["elliptic_curves"]["result"]
    groups = [c["name"] for c in (curves.get("supported_curves") or [])]
    print(f"  {listener}: client certificate {need}; protocols "
          f"{'none below TLS 1.2' if not any(r[f'{v}_cipher_suites']['result']['accepted_cipher_suites'] for v in LEGACY) else 'LEGACY ACCEPTED'}; "
          f"suites {', '.join(suites)}; groups {', '.join(groups)}; client renegotiation refused: "
          f"{not reneg['client_renegotiations_success_count']}; compression "
          f"{r['tls_compression']['result']['supports_compression']}; ROBOT {robot}")


home = tempfile.mkdtemp(prefix="audit-tls-")
gateway = None
try:
    config = open(os.path.join(root, "gateway.toml")).read()
    config = config.replace("127.0.0.1:8443", "127.0.0.1:0").replace("127.0.0.1:9443", "127.0.0.1:0")
    config = re.sub(r'(?m)^path = "data"', f'path = "{home}/data"', config)
    open(os.path.join(home, "gateway.toml"), "w").write(config)
    shutil.copytree(os.path.join(root, "policies"), os.path.join(home, "policies"))
    subprocess.run([jxg, "certs", "init", "--config", "gateway.toml", "--dir", "certs/dev"],
                   cwd=home, check=True, stdout=subprocess.DEVNULL)
    gateway = subprocess.Popen([jxg, "serve", "--config", "gateway.toml"], cwd=home,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    addresses = None
    deadline = time.time() + 60
    for line in gateway.stdout:
        try:
            fields = json.loads(line).get("fields", {})
        except ValueError:
            continue
        if fields.get("message") == "listening":
            addresses = fields
            break
        if time.time() > deadline:
            break
    if not addresses:
        sys.exit("audit-tls: the gateway did not start")
    # the gateway's log is read and dropped, so that it never waits on a full pipe
    threading.Thread(target=lambda: [None for _ in gateway.stdout], daemon=True).start()
    certs = os.path.join(home, "certs/dev")
    ca = os.path.join(certs, "ca.pem")
    print(f"audit-tls: sslyze against both listeners; reports in {out_dir}", flush=True)
    for listener, who in [("authority", "police"), ("admin", "operator")]:
        target = addresses[listener]
        bare = scan(target, f"{listener}-without-certificate")
        full = scan(target, listener, os.path.join(certs, f"{who}.pem"),
                    os.path.join(certs, f"{who}-key.pem"), ca)
        check(listener, bare, full)
finally:
    if gateway:
        gateway.terminate()
        gateway.wait(timeout=30)
    shutil.rmtree(home, ignore_errors=True)

if findings:
    print("audit-tls: FINDINGS", *findings, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print("audit-tls: no findings")
