#!/usr/bin/env bash
# Makes sure PostgreSQL answers on 127.0.0.1:5432: starts the installed cluster where there is
# one, else fails with a clear message. The PostgreSQL engine's tests make a database of their
# own on it (user postgres, trust authentication on loopback) and drop it afterwards.
set -euo pipefail
host=127.0.0.1 port=5432
up() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }
if up; then echo "postgres: PostgreSQL answers on $host:$port"; exit 0; fi
if command -v pg_lsclusters >/dev/null 2>&1 && [ -n "$(pg_lsclusters -h 2>/dev/null)" ]; then
  read -r version cluster _ < <(pg_lsclusters -h | head -1)
  echo "postgres: not answering; starting cluster $version/$cluster"
  pg_ctlcluster "$version" "$cluster" start || true
  for _ in $(seq 1 60); do up && { echo "postgres: up"; exit 0; }; sleep 1; done
  echo "postgres: cluster $version/$cluster did not answer on $host:$port within 60 s" >&2; exit 1
fi
echo "postgres: nothing answers on $host:$port and no PostgreSQL cluster is installed." >&2
echo "          Install one (apt-get install postgresql) or start yours, then run make test again." >&2
exit 1
