#!/usr/bin/env bash
# Interop test: starts the real trove binary on a free loopback port and drives it
# with real clients: every grpcurl example of README.md and docs/QUERY.md (grpcurl 1.8.6) and Python
# grpcio (health, reflection, a dynamic Search call, undecodable bytes).
#
# Needs grpcurl and a Python with grpcio, grpcio-reflection and
# grpcio-health-checking on PATH (.ci/run installs them in .venv).
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build --quiet --bin trove
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
snapshots=$(mktemp -d)
./target/debug/trove --listen "127.0.0.1:$port" --seeds seeds --snapshot-dir "$snapshots" >"$log" 2>&1 &
pid=$!
# A second server with TLS and API keys, set up as docs/SECURITY.md says.
secure=$(mktemp -d)
secure_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 tests/interop/interop.py prepare-secure "$secure"
./target/debug/trove --listen "127.0.0.1:$secure_port" --seeds seeds --snapshot-dir "$secure/snapshots" \
  --api-keys "$secure/keys.toml" --tls-cert "$secure/server.pem" --tls-key "$secure/server.key" \
  >"$secure/log" 2>&1 &
secure_pid=$!
trap 'kill "$pid" "$secure_pid" 2>/dev/null || true; wait "$pid" "$secure_pid" 2>/dev/null || true; rm -rf "$snapshots" "$secure"' EXIT

status=0
python3 tests/interop/interop.py "127.0.0.1:$port" "$secure_port" "$secure" || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- server log ---"
  cat "$log"
  echo "--- TLS and API keys server log ---"
  cat "$secure/log"
fi
kill -TERM "$pid"
wait "$pid" || { echo "server did not exit cleanly on SIGTERM"; exit 1; }
grep -q "stopped" "$log" || { echo "server log lacks the graceful stop"; cat "$log"; exit 1; }
exit "$status"
