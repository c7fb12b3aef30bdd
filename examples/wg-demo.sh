#!/usr/bin/env bash
# MeshOperator quick start: two WireGuard peers run by `mesh-sidecar wg`, on one machine.
#
# Builds mesh-sidecar (Release), creates two network namespaces joined by a veth pair
# (198.18.0.1/24 <-> 198.18.0.2/24, the RFC 2544 benchmarking range, never routed off this host),
# starts `mesh-sidecar wg` in each with freshly generated keys (tunnel 100.64.0.1 <-> 100.64.0.2),
# shows both interfaces with `wg show`, pings across the tunnel, shows them again, and removes
# everything it created on exit.
#
# Usage: sudo examples/wg-demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

. examples/host.sh
demo_prepare demo ip=iproute2 wg=wireguard-tools ping=iputils-ping
echo "==> building mesh-sidecar (Release)"
dotnet build sidecar/Mesh.Sidecar -c Release -nologo -clp:ErrorsOnly >/dev/null
DLL=$PWD/sidecar/Mesh.Sidecar/bin/Release/net10.0/mesh-sidecar.dll

# Random suffix: interface names are machine-wide (/var/run/wireguard/NAME.sock).
sfx=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
NS_A=mt-$sfx-a NS_B=mt-$sfx-b
WG_A=mt${sfx}a WG_B=mt${sfx}b
WORK=$(mktemp -d /tmp/mt-demo-XXXXXX)
PIDS=()

cleanup() {
    local pid
    echo "==> cleaning up"
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    ip netns del "$NS_A" 2>/dev/null || true
    ip netns del "$NS_B" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "==> namespaces $NS_A (198.18.0.1) and $NS_B (198.18.0.2) joined by a veth pair"
ip netns add "$NS_A"
ip netns add "$NS_B"
ip link add "mt${sfx}va" netns "$NS_A" type veth peer name "mt${sfx}vb" netns "$NS_B"
ip -n "$NS_A" addr add 198.18.0.1/24 dev "mt${sfx}va"
ip -n "$NS_B" addr add 198.18.0.2/24 dev "mt${sfx}vb"
for ns in "$NS_A" "$NS_B"; do ip -n "$ns" link set lo up; done
ip -n "$NS_A" link set "mt${sfx}va" up
ip -n "$NS_B" link set "mt${sfx}vb" up

key_a=$(wg genkey) key_b=$(wg genkey)
pub_a=$(wg pubkey <<<"$key_a") pub_b=$(wg pubkey <<<"$key_b")

write_conf() { # FILE PRIVATE ADDRESS PEER_PUBLIC PEER_ADDRESS PEER_ENDPOINT
    cat >"$1" <<EOF
[Interface]
PrivateKey = $2
Address = $3/32
ListenPort = 51820

[Peer]
PublicKey = $4
AllowedIPs = $5/32
Endpoint = $6
EOF
    chmod 600 "$1"
}
write_conf "$WORK/a.conf" "$key_a" 100.64.0.1 "$pub_b" 100.64.0.2 198.18.0.2:51820
write_conf "$WORK/b.conf" "$key_b" 100.64.0.2 "$pub_a" 100.64.0.1 198.18.0.1:51820

start() { # NS IFACE CONF ADDRESS
    echo "==> mesh-sidecar wg --config $3 --interface $2   (in $1)"
    ip netns exec "$1" dotnet "$DLL" wg --config "$3" --interface "$2" >"$WORK/$2.log" 2>&1 &
    local pid=$! i
    PIDS+=("$pid")
    for ((i = 0; i < 300; i++)); do
        if [ -S "/var/run/wireguard/$2.sock" ] && ip -n "$1" -o addr show dev "$2" 2>/dev/null | grep -q " $4/"; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "demo: mesh-sidecar for $2 exited before it was ready; its output:" >&2
            cat "$WORK/$2.log" >&2
            exit 1
        fi
        sleep 0.1 # polling interval, bounded by the loop
    done
    echo "demo: mesh-sidecar for $2 was not ready within 30 s; its output:" >&2
    cat "$WORK/$2.log" >&2
    exit 1
}
start "$NS_A" "$WG_A" "$WORK/a.conf" 100.64.0.1
start "$NS_B" "$WG_B" "$WORK/b.conf" 100.64.0.2

show() {
    ip netns exec "$NS_A" wg show "$WG_A"
    echo
    ip netns exec "$NS_B" wg show "$WG_B"
}

echo "==> wg show (before traffic)"
show
echo "==> ping 100.64.0.2 from $NS_A through the tunnel"
ip netns exec "$NS_A" ping -c 3 -i 0.5 -W 2 100.64.0.2
echo "==> wg show (after traffic)"
show
