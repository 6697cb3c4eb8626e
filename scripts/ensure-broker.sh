#!/usr/bin/env bash
# Makes sure RabbitMQ answers on 127.0.0.1:5672: starts it where it is installed, else fails
# with a clear message. Tests that need the broker use the real one, never a mock.
set -euo pipefail
host=127.0.0.1 port=5672
up() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }
if up; then echo "broker: RabbitMQ answers on $host:$port"; exit 0; fi
if command -v rabbitmq-server >/dev/null 2>&1; then
  echo "broker: not answering; starting rabbitmq-server -detached"
  rabbitmq-server -detached || true
  for _ in $(seq 1 60); do up && { echo "broker: up"; exit 0; }; sleep 1; done
  echo "broker: rabbitmq-server did not answer on $host:$port within 60 s" >&2; exit 1
fi
echo "broker: nothing answers on $host:$port and rabbitmq-server is not installed." >&2
echo "        Install it (apt-get install rabbitmq-server) or start your broker, then run make test again." >&2
exit 1
