#!/usr/bin/env bash
# MeshOperator quick start: the whole mesh on one machine.
#
# Builds mesh-operator and mesh-sidecar (Release), creates a LAN (a bridge in its own network
# namespace, 198.18.3.0/24 — the RFC 2544 benchmarking range, never routed off this host), runs the
# coordinator on its embedded defaults (only its listen address changed, so the nodes can reach it)
# and three agents (`mesh-sidecar up`) each in a namespace of its own, then shows
# `mesh-sidecar status` and pings a node by its MagicDNS name. Everything is removed on exit.
#
# Usage: sudo ./demo.sh          (a standalone WireGuard tunnel only: sudo examples/wg-demo.sh)
set -euo pipefail
cd "$(dirname "$0")"

. examples/host.sh
demo_prepare demo ip=iproute2 ping=iputils-ping
echo "==> building mesh-operator and mesh-sidecar (Release)"
dotnet build operator/Mesh.Operator -c Release -nologo -clp:ErrorsOnly >/dev/null
dotnet build sidecar/Mesh.Sidecar -c Release -nologo -clp:ErrorsOnly >/dev/null
OPERATOR="dotnet $PWD/operator/Mesh.Operator/bin/Release/net10.0/mesh-operator.dll"
SIDECAR="dotnet $PWD/sidecar/Mesh.Sidecar/bin/Release/net10.0/mesh-sidecar.dll"

sfx=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
LAN=md-$sfx-lan
WORK=$(mktemp -d /tmp/md-demo-XXXXXX)
NAMESPACES=("$LAN")
PIDS=()

cleanup() {
    local pid ns
    echo "==> cleaning up"
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; rm -rf "/etc/netns/$ns"; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$LAN"
ip -n "$LAN" link add br0 type bridge
ip -n "$LAN" link set br0 up
n=1
attach() { # ROLE -> creates namespace md-SFX-ROLE at 198.18.3.N
    local ns=md-$sfx-$1
    ip netns add "$ns"
    NAMESPACES+=("$ns")
    ip link add "md${sfx}$1i" netns "$ns" type veth peer name "md${sfx}$1o" netns "$LAN"
    ip -n "$LAN" link set "md${sfx}$1o" master br0 up
    ip -n "$ns" addr add "198.18.3.$n/24" dev "md${sfx}$1i"
    ip -n "$ns" link set "md${sfx}$1i" up
    ip -n "$ns" link set lo up
    # Programs run with `ip netns exec` in this namespace resolve through MagicDNS.
    mkdir -p "/etc/netns/$ns"
    printf 'nameserver 100.100.100.100\nsearch mesh.internal\n' >"/etc/netns/$ns/resolv.conf"
    n=$((n + 1))
}

echo "==> the coordinator (mesh-operator coordinator) at 198.18.3.1:8080"
attach co
cat >"$WORK/coordinator.yaml" <<C
server_url: http://198.18.3.1:8080
listen_addr: 198.18.3.1:8080
metrics_listen_addr: 198.18.3.1:9090
derp: {server: {stun_listen_addr: 198.18.3.1:3478}}
C
(cd "$WORK" && exec ip netns exec "md-$sfx-co" $OPERATOR coordinator --config coordinator.yaml >"$WORK/coordinator.log" 2>&1) &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$WORK/mesh-data/mesh.sock" ] && break; sleep 0.1; done
admin() { (cd "$WORK" && $OPERATOR "$@"); }
admin users create alice >/dev/null
KEY=$(admin preauthkeys create --user alice --reusable --expiration 1h -o json | sed -n 's/.*"key": *"\([^"]*\)".*/\1/p')
echo "    user alice, pre-auth key ${KEY:0:23}…"

for node in web db laptop; do
    attach "$node"
    echo "==> agent $node (mesh-sidecar up) in md-$sfx-$node"
    ip netns exec "md-$sfx-$node" $SIDECAR up --login-server http://198.18.3.1:8080 --authkey "$KEY" \
        --hostname "$node" --state "$WORK/state-$node" --socket "$WORK/$node.sock" >"$WORK/agent-$node.log" 2>&1 &
    PIDS+=($!)
done

echo "==> waiting for the mesh"
for _ in $(seq 150); do
    [ "$($SIDECAR status --socket "$WORK/laptop.sock" 2>/dev/null | grep -c ' online ')" = 2 ] && break
    sleep 0.2
done
echo
echo "\$ mesh-operator nodes list"
admin nodes list
echo
echo "\$ mesh-sidecar status        (on laptop)"
$SIDECAR status --socket "$WORK/laptop.sock"
echo
echo "\$ ping db                    (on laptop, by MagicDNS name)"
ip netns exec "md-$sfx-laptop" ping -c 3 db
echo
echo "\$ mesh-sidecar ping web      (on laptop)"
$SIDECAR ping web --socket "$WORK/laptop.sock"
echo
