#!/usr/bin/env python3
"""Runs the README's shell commands in order, in one fresh bash, as a newcomer would copy them.

`make run` starts in the background (its own process group, stopped at the end) and the script
waits for its listeners; `make test` is left out (make test runs this script, in a clean clone of the
repository: scripts/clone-check.sh). The gateway's store
`data/` is moved aside for the run and put back afterwards, so the commands meet a fresh store as
on a clean clone. Exit 0 when every command succeeded.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(root)
readme = open("README.md", encoding="utf-8").read()
blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.S)
if not blocks:
    sys.exit("readme-check: no ```sh blocks in README.md")

lines = ["set -euo pipefail"]
for block in blocks:
    for line in block.splitlines():
        command = line.split("#", 1)[0].strip()
        if command == "make test":
            lines.append("# (make test runs this script)")
        elif command == "make run":
            lines.append(
                "setsid make run > target/readme-run.log 2>&1 &\n"
                "echo $! > target/readme-run.pid\n"
                "for _ in $(seq 1 600); do\n"
                "  (exec 3<>/dev/tcp/127.0.0.1/9443) 2>/dev/null && break\n"
                "  kill -0 $(cat target/readme-run.pid) 2>/dev/null || { cat target/readme-run.log; exit 1; }\n"
                "  sleep 0.2\n"
                "done"
            )
        else:
            lines.append(line)
script = "\n".join(lines) + "\n"

for port in (8443, 9443):
    import socket

    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            sys.exit(f"readme-check: port {port} is taken; stop the gateway there (make run) first")

os.makedirs("target", exist_ok=True)
aside = None
if os.path.exists("data"):
    aside = tempfile.mkdtemp(prefix="data-aside-", dir="target")
    shutil.move("data", os.path.join(aside, "data"))
print(f"readme-check: {sum(len(b.splitlines()) for b in blocks)} lines from {len(blocks)} blocks")
try:
    result = subprocess.run(["bash", "-c", script], cwd=root)
finally:
    try:
        pid = int(open("target/readme-run.pid").read())
        os.killpg(pid, signal.SIGTERM)
        for _ in range(100):
            os.killpg(pid, 0)
            import time

            time.sleep(0.1)
    except (OSError, ValueError):
        pass
    if os.path.exists("target/readme-run.pid"):
        os.remove("target/readme-run.pid")
    shutil.rmtree("data", ignore_errors=True)
    if aside:
        shutil.move(os.path.join(aside, "data"), "data")
        shutil.rmtree(aside, ignore_errors=True)
if result.returncode != 0:
    sys.exit(f"readme-check: a README command failed (exit {result.returncode}); the gateway's log is target/readme-run.log")
print("readme-check: every README command worked as written")
