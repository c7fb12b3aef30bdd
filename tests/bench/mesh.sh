#!/usr/bin/env bash
# Mesh benchmark (prints figures; never passes or fails): a coordinator and two agents in network
# namespaces on a bridged LAN (198.18.4.0/24). Measures, in one run:
#   - time from starting `mesh-sidecar up` to the first successful ping through the mesh,
#   - the agent's idle RSS (the native AOT binary, as shipped),
#   - iperf3 TCP throughput between the two agents over the direct path, then through the relay
#     (the second agent's UDP blocked with iptables), and the ratio.
# Usage: tests/bench/mesh.sh   (as root)   DURATION=8 seconds per iperf3 run
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-8}
[ "$(id -u)" = 0 ] || { echo "mesh bench: run as root" >&2; exit 1; }
for tool in ip iperf3 iptables ping dotnet; do command -v $tool >/dev/null || { echo "mesh bench: missing $tool" >&2; exit 1; }; done

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
echo "building mesh-operator (Release) and publishing mesh-sidecar as native AOT..."
dotnet build operator/Mesh.Operator -c Release -nologo -clp:ErrorsOnly >/dev/null
AOT_DIR=$PWD/sidecar/Mesh.Sidecar/bin/Release/aot
dotnet publish sidecar/Mesh.Sidecar -c Release -r linux-x64 -nologo -clp:ErrorsOnly -o "$AOT_DIR" >/dev/null
OPERATOR="dotnet $PWD/operator/Mesh.Operator/bin/Release/net10.0/mesh-operator.dll"
SIDECAR=$AOT_DIR/mesh-sidecar

sfx=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
WORK=$(mktemp -d /tmp/mb-bench-XXXXXX)
NS=(mb-$sfx-lan)
PIDS=()
cleanup() {
    local p n
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add "${NS[0]}"
ip -n "${NS[0]}" link add br0 type bridge
ip -n "${NS[0]}" link set br0 up
n=1
attach() {
    local ns=mb-$sfx-$1
    ip netns add "$ns"; NS+=("$ns")
    ip link add "mb${sfx}$1i" netns "$ns" type veth peer name "mb${sfx}$1o" netns "${NS[0]}"
    ip -n "${NS[0]}" link set "mb${sfx}$1o" master br0 up
    ip -n "$ns" addr add "198.18.4.$n/24" dev "mb${sfx}$1i"
    ip -n "$ns" link set "mb${sfx}$1i" up
    ip -n "$ns" link set lo up
    n=$((n + 1))
}
attach co
printf 'server_url: http://198.18.4.1:8080\nlisten_addr: 198.18.4.1:8080\nmetrics_listen_addr: 198.18.4.1:9090\nderp: {server: {stun_listen_addr: 198.18.4.1:3478}}\n' >"$WORK/c.yaml"
(cd "$WORK" && exec ip netns exec "mb-$sfx-co" $OPERATOR coordinator --config c.yaml >"$WORK/co.log" 2>&1) &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$WORK/mesh-data/mesh.sock" ] && break; sleep 0.1; done
admin() { (cd "$WORK" && $OPERATOR "$@"); }
admin users create bench >/dev/null
KEY=$(admin preauthkeys create --user bench --reusable -o json | sed -n 's/.*"key": *"\([^"]*\)".*/\1/p')

up() { # NAME
    ip netns exec "mb-$sfx-$1" "$SIDECAR" up --login-server http://198.18.4.1:8080 --authkey "$KEY" --hostname "$1" \
        --state "$WORK/s-$1" --socket "$WORK/$1.sock" >"$WORK/$1.log" 2>&1 &
    PIDS+=($!)
    LAST=$!
}
attach a; up a; PID_A=$LAST
for _ in $(seq 100); do "$SIDECAR" ip -4 --socket "$WORK/a.sock" >/dev/null 2>&1 && break; sleep 0.1; done
IP_A=$("$SIDECAR" ip -4 --socket "$WORK/a.sock")

attach b
start=$(date +%s.%N)
up b; PID_B=$LAST
for _ in $(seq 300); do ip netns exec "mb-$sfx-b" ping -c 1 -W 1 "$IP_A" >/dev/null 2>&1 && break; done
first_ping=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.2f", e - s}')
IP_B=$("$SIDECAR" ip -4 --socket "$WORK/b.sock")
sleep 5
rss_a=$(awk '/^VmRSS:/ {printf "%.1f", $2/1024}' /proc/$PID_A/status)

iperf() { # -> Gbit/s a -> b
    ip netns exec "mb-$sfx-b" iperf3 -s -1 -B "$IP_B" >/dev/null 2>&1 &
    local s=$!
    for _ in $(seq 50); do ip netns exec "mb-$sfx-b" ss -Hltn "src $IP_B" | grep -q 5201 && break; sleep 0.1; done
    ip netns exec "mb-$sfx-a" iperf3 -c "$IP_B" -t "$DURATION" -f g 2>/dev/null | awk '/receiver$/ {for (i=1;i<=NF;i++) if ($i=="Gbits/sec") print $(i-1)}'
    wait $s 2>/dev/null || true
}
path_b() { "$SIDECAR" status --socket "$WORK/a.sock" | awk '$3 == "b" {print $5, $6}'; }
direct=$(iperf); direct_path=$(path_b)
# Block b's UDP to and from the other nodes (the coordinator, over TCP, stays reachable).
ip netns exec "mb-$sfx-b" iptables -A OUTPUT -p udp -d 198.18.4.2 -j DROP
ip netns exec "mb-$sfx-b" iptables -A INPUT -p udp -s 198.18.4.2 -j DROP
for _ in $(seq 90); do [[ $(path_b) == relay* ]] && break; ip netns exec "mb-$sfx-a" ping -c 1 -W 1 "$IP_B" >/dev/null 2>&1 || true; done
relayed=$(iperf); relay_path=$(path_b)
rss_a_after=$(awk '/^VmRSS:/ {printf "%.1f", $2/1024}' /proc/$PID_A/status)

echo
echo "mesh benchmark, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-44s %s\n' "up -> first ping through the mesh" "${first_ping} s"
printf '%-44s %s\n' "agent RSS, idle (native AOT)" "${rss_a} MiB"
printf '%-44s %s\n' "agent RSS after the iperf3 runs" "${rss_a_after} MiB"
printf '%-44s %s\n' "iperf3 a -> b, direct ($direct_path)" "${direct:-n/a} Gbit/s"
printf '%-44s %s\n' "iperf3 a -> b, through the relay ($relay_path)" "${relayed:-n/a} Gbit/s"
if [ -n "$direct" ] && [ -n "$relayed" ]; then
    printf '%-44s %s\n' "relay / direct" "$(awk -v r="$relayed" -v d="$direct" 'BEGIN {printf "%.2f", r / d}')"
fi
