#!/usr/bin/env bash
# Coordinator scale benchmark: prints figures, never passes or fails on them.
#
# Builds mesh-operator and tests/bench/Mesh.CoordinatorBench (Release), starts
# `mesh-operator coordinator` as its own process on loopback (free ports, a temporary database and
# admin socket, no embedded relay), and runs the bench client against it: one process simulating
# NODES nodes over loopback HTTP. Phases:
#   1 register NODES nodes (reusable pre-auth keys, PARALLEL in flight): time, rate, p50/p99
#   2 open STREAMS map streams (nodes 1..STREAMS) until each has its first full map; coordinator RSS
#   3 policy allow-all -> per-user -> allow-all, ROUNDS times: per-stream time until the new packet
#     filter arrived (p50/p99/max; the issue's target is p99 <= 2 s)
#   4 one node joins, ROUNDS times: per-stream time until it appears in PeersChanged
#   5 in-process PolicyEngine.Compile: COMPILE_RULES rules x COMPILE_NODES nodes (target <= 1 s)
# The coordinator's RSS (and peak) comes from /proc/PID/status, its CPU time from /proc/PID/stat, and
# policy compile counts, bytes allocated per phase and the GC heap from its /metrics (the runtime's
# meter); the last row is its RSS 10 s after the last change. Everything it creates is removed on
# exit, including on Ctrl-C.
#
# The issue's size is NODES=10000 STREAMS=1000: about 2–3 minutes on this 2-core machine (measured
# 10,000 registrations in 8.5–9.8 s, 1,000 streams connected in 47–75 s, mostly the bench client's own
# CPU). The default is a smaller size that finishes in about a minute; ask for the full size explicitly.
#
# Usage: tests/bench/coordinator.sh
#   NODES=3000 STREAMS=300 ROUNDS=3 PARALLEL=32 OPEN_PARALLEL=16 USERS=10
#   COMPILE_NODES=10000 COMPILE_RULES=1000 PROBE_TIMEOUT=90
#   KEEP=1   keep the temporary directory (config, database, coordinator.log)
set -euo pipefail
cd "$(dirname "$0")/../.."

for tool in dotnet curl python3; do
    command -v "$tool" >/dev/null || { echo "coordinator-bench: $tool not found" >&2; exit 1; }
done

export NODES=${NODES:-3000} STREAMS=${STREAMS:-300} ROUNDS=${ROUNDS:-3}
export PARALLEL=${PARALLEL:-32} OPEN_PARALLEL=${OPEN_PARALLEL:-16} USERS=${USERS:-10}
export COMPILE_NODES=${COMPILE_NODES:-10000} COMPILE_RULES=${COMPILE_RULES:-1000} PROBE_TIMEOUT=${PROBE_TIMEOUT:-90}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# Each map stream holds one connection at both ends, both in this shell's children.
want=$((STREAMS * 2 + 4096))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then
    ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((STREAMS + 512)) ]; then
    echo "coordinator-bench: open-file limit $(ulimit -n) is too low for $STREAMS streams (raise the hard limit)" >&2
    exit 1
fi

echo "building mesh-operator and the bench client (Release)..."
dotnet build operator/Mesh.Operator -c Release -nologo -clp:ErrorsOnly >/dev/null
dotnet build tests/bench/Mesh.CoordinatorBench -c Release -nologo -clp:ErrorsOnly >/dev/null
OPERATOR_DLL=$PWD/operator/Mesh.Operator/bin/Release/net10.0/mesh-operator.dll
BENCH_DLL=$PWD/tests/bench/Mesh.CoordinatorBench/bin/Release/net10.0/Mesh.CoordinatorBench.dll

work=$(mktemp -d "${TMPDIR:-/tmp}/mesh-coordbench.XXXXXX")
coordinator=
cleanup() {
    if [ -n "$coordinator" ] && kill -0 "$coordinator" 2>/dev/null; then
        kill "$coordinator" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$coordinator" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$coordinator" 2>/dev/null || true
        wait "$coordinator" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r http_port metrics_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')

cat >"$work/config.yaml" <<YAML
server_url: http://127.0.0.1:$http_port
listen_addr: 127.0.0.1:$http_port
metrics_listen_addr: 127.0.0.1:$metrics_port
unix_socket: $work/mesh.sock
derp: {server: {enabled: false}}
database: {type: sqlite, sqlite: {path: $work/mesh.db}}
YAML

dotnet "$OPERATOR_DLL" coordinator --config "$work/config.yaml" >"$work/coordinator.log" 2>&1 &
coordinator=$!
for _ in $(seq 300); do
    curl -fs "http://127.0.0.1:$http_port/healthz" >/dev/null 2>&1 && [ -S "$work/mesh.sock" ] && break
    kill -0 "$coordinator" 2>/dev/null || { echo "coordinator-bench: the coordinator exited:" >&2; cat "$work/coordinator.log" >&2; exit 1; }
    sleep 0.1
done
echo "coordinator pid $coordinator on 127.0.0.1:$http_port (metrics :$metrics_port); open-file limit $(ulimit -n)"

status=0
SERVER=http://127.0.0.1:$http_port ADMIN_SOCKET=$work/mesh.sock COORDINATOR_PID=$coordinator \
    METRICS=http://127.0.0.1:$metrics_port/metrics \
    dotnet "$BENCH_DLL" || status=$?
if ! kill -0 "$coordinator" 2>/dev/null; then
    echo "coordinator-bench: the coordinator died during the run; its log ends:" >&2
    tail -20 "$work/coordinator.log" >&2
fi
exit "$status"
