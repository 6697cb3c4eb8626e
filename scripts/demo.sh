#!/usr/bin/env bash
# make demo: the sample story through a gateway of its own. Starts the gateway on the development
# defaults (certificates made if needed) with the courts on a webhook that `jxg-tools simulate` serves,
# plays the story, shows the case timeline and verifies the audit log offline, and stops
# everything it started. The demo's store and configuration live in target/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
JXG=target/debug/jxg
TOOLS=target/debug/jxg-tools
DEMO=target/demo
SAMPLES=${SAMPLES:-tests/data}
AUTHORITY=127.0.0.1:8453 ADMIN=127.0.0.1:9453 WEBHOOK=127.0.0.1:9454

[ -d "$SAMPLES" ] || { echo "demo: the samples are not at $SAMPLES (set SAMPLES=...)" >&2; exit 2; }
cargo build -q -p jxg-gateway --bin jxg -p jxg-tools --bin jxg-tools
[ -f certs/dev/ca.pem ] || $JXG certs init --config gateway.toml --dir certs/dev
rm -rf "$DEMO" && mkdir -p "$DEMO"
# the shipped configuration, with paths from target/demo, ports of its own, queues of its own and
# the courts on the simulation's webhook
sed -e "s#\"certs/dev/#\"../../certs/dev/#" \
    -e "s#^policies = \"policies\"#policies = \"../../policies\"#" \
    -e "s#127.0.0.1:8443#$AUTHORITY#; s#127.0.0.1:9443#$ADMIN#" \
    -e "s#\"jxg.prosecution.#\"jxg.demo.prosecution.#" \
    gateway.toml > "$DEMO/gateway.toml"
python3 - "$DEMO/gateway.toml" "$WEBHOOK" <<'PY'
import sys
path, hook = sys.argv[1], sys.argv[2]
text = open(path).read()
head, sep, rest = text.partition('id = "courts"')
rest = rest.replace('delivery = "pull"', f'delivery = "push"\nwebhook = "https://{hook}/jxg"', 1)
text = head + sep + rest + '\n[audit]\nhmac_key = "../../certs/dev/audit-hmac.key"\n'
open(path, "w").write(text)
PY

broker=(--no-broker)
if (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  broker=()
else
  echo "demo: RabbitMQ does not answer on 127.0.0.1:5672, so the prosecution's leg is left out."
  echo "      Start it (rabbitmq-server -detached; Debian: apt-get install rabbitmq-server) for the whole story."
fi

$JXG serve --config "$DEMO/gateway.toml" > "$DEMO/gateway.log" 2>&1 &
gw=$!
trap 'kill -TERM $gw 2>/dev/null || true; wait $gw 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q '"listening"' "$DEMO/gateway.log" && break
  kill -0 $gw 2>/dev/null || { echo "demo: the gateway did not start:" >&2; cat "$DEMO/gateway.log" >&2; exit 1; }
  sleep 0.1
done
echo "demo: the gateway serves on $AUTHORITY (authority API) and $ADMIN (admin API); its log is $DEMO/gateway.log"
echo

status=0
$TOOLS simulate --config "$DEMO/gateway.toml" --samples "$SAMPLES" --report "$DEMO/report.json" "${broker[@]}" || status=$?

kill -TERM $gw; wait $gw || true
trap - EXIT
echo
echo "demo: the gateway has stopped; jxg audit verify reads its store offline:"
$JXG audit verify --config "$DEMO/gateway.toml" || status=1
exit $status
