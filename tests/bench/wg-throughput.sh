#!/usr/bin/env bash
# WireGuard throughput benchmark: prints figures, never passes or fails.
#
# Builds mesh-sidecar (Release), creates two network namespaces joined by a veth pair
# (198.18.0.1/24 <-> 198.18.0.2/24, the RFC 2544 benchmarking range) and measures, one after the
# other, single-stream iperf3 TCP over:
#   raw veth | wireguard-go <-> wireguard-go | mesh-sidecar <-> mesh-sidecar |
#   mesh-sidecar -> wireguard-go | wireguard-go -> mesh-sidecar
# plus the ping RTT through each path and the RSS of the mesh-sidecar process before and after
# traffic. mesh-sidecar runs as shipped (native AOT); one extra case runs the JIT build. Tunnel addresses are 100.64.0.1 (side A) and 100.64.0.2 (side B). Everything it creates
# is removed on exit, including on Ctrl-C.
#
# Usage: tests/bench/wg-throughput.sh            (as root)
#   DURATION=10   seconds per iperf3 run
#   PINGS=20      pings per RTT figure (0.05 s apart)
#   BASELINE=DIR  also measure the mesh-sidecar binary at DIR/mesh-sidecar (e.g. an AOT publish of
#                 main) both ends, in the same run, so a change is compared against its baseline
#   QUICK=1       leave out the JIT and mixed-implementation cases
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10}
PINGS=${PINGS:-20}

if [ "$(id -u)" != 0 ]; then
    echo "wg-throughput: must run as root (it creates network namespaces and TUN devices); try: sudo $0" >&2
    exit 1
fi
missing=()
for tool in ip wg wireguard-go iperf3 ping ss dotnet; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
[ -e /dev/net/tun ] || missing+=(/dev/net/tun)
if ((${#missing[@]})); then
    echo "wg-throughput: missing ${missing[*]} (Debian: apt-get install iproute2 wireguard-tools wireguard-go iperf3 iputils-ping)" >&2
    exit 1
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
echo "building mesh-sidecar (Release, JIT) and publishing it as native AOT (as shipped)..."
dotnet build sidecar/Mesh.Sidecar -c Release -nologo -clp:ErrorsOnly >/dev/null
DLL=$PWD/sidecar/Mesh.Sidecar/bin/Release/net10.0/mesh-sidecar.dll
AOT_DIR=$PWD/sidecar/Mesh.Sidecar/bin/Release/aot
dotnet publish sidecar/Mesh.Sidecar -c Release -r linux-x64 -nologo -clp:ErrorsOnly -o "$AOT_DIR" >/dev/null
AOT=$AOT_DIR/mesh-sidecar

# Unique names: interface names are global through /var/run/wireguard/NAME.sock.
sfx=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
NS_A=mt-$sfx-a
NS_B=mt-$sfx-b
VETH_A=mt${sfx}ua
VETH_B=mt${sfx}ub
WORK=$(mktemp -d /tmp/mt-bench-XXXXXX)
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    ip netns del "$NS_A" 2>/dev/null || true
    ip netns del "$NS_B" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

inns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# --- underlay -------------------------------------------------------------------------------
ip netns add "$NS_A"
ip netns add "$NS_B"
ip link add "$VETH_A" netns "$NS_A" type veth peer name "$VETH_B" netns "$NS_B"
inns "$NS_A" ip addr add 198.18.0.1/24 dev "$VETH_A"
inns "$NS_B" ip addr add 198.18.0.2/24 dev "$VETH_B"
for ns in "$NS_A" "$NS_B"; do inns "$ns" ip link set lo up; done
inns "$NS_A" ip link set "$VETH_A" up
inns "$NS_B" ip link set "$VETH_B" up

KEY_A=$(wg genkey); PUB_A=$(wg pubkey <<<"$KEY_A")
KEY_B=$(wg genkey); PUB_B=$(wg pubkey <<<"$KEY_B")

# --- tunnel ends ----------------------------------------------------------------------------
# Each start_* sets LAST_PID, or prints why it could not and returns 1.
LAST_PID=

wait_socket() { # IFACE PID LOG
    local i
    for ((i = 0; i < 300; i++)); do
        [ -S "/var/run/wireguard/$1.sock" ] && return 0
        if ! kill -0 "$2" 2>/dev/null; then
            echo "    $1 exited before serving its UAPI socket; last output:" >&2
            tail -n 5 "$3" | sed 's/^/      /' >&2
            return 1
        fi
        sleep 0.1 # polling interval, bounded by the loop
    done
    echo "    $1: no /var/run/wireguard/$1.sock within 30 s" >&2
    return 1
}

# SIDE (a|b) IMPL (wggo|mesh) IFACE
start_end() {
    local side=$1 impl=$2 iface=$3 ns key addr peer_pub peer_addr peer_endpoint port log conf
    if [ "$side" = a ]; then
        ns=$NS_A key=$KEY_A addr=100.64.0.1 port=51820 peer_pub=$PUB_B peer_addr=100.64.0.2 peer_endpoint=198.18.0.2:51821
    else
        ns=$NS_B key=$KEY_B addr=100.64.0.2 port=51821 peer_pub=$PUB_A peer_addr=100.64.0.1 peer_endpoint=198.18.0.1:51820
    fi
    log=$WORK/$iface.log
    conf=$WORK/$iface.conf
    if [ "$impl" = mesh ] || [ "$impl" = meshjit ] || [ "$impl" = meshbase ]; then
        cat >"$conf" <<EOF
[Interface]
PrivateKey = $key
Address = $addr/32
ListenPort = $port
MTU = 1420

[Peer]
PublicKey = $peer_pub
AllowedIPs = $peer_addr/32
Endpoint = $peer_endpoint
EOF
        chmod 600 "$conf"
        if [ "$impl" = meshbase ]; then
            ip netns exec "$ns" "$BASELINE/mesh-sidecar" wg --config "$conf" --interface "$iface" >"$log" 2>&1 &
        elif [ "$impl" = mesh ]; then
            ip netns exec "$ns" "$AOT" wg --config "$conf" --interface "$iface" >"$log" 2>&1 &
        else
            ip netns exec "$ns" dotnet "$DLL" wg --config "$conf" --interface "$iface" >"$log" 2>&1 &
        fi
        LAST_PID=$!
        PIDS+=("$LAST_PID")
        wait_socket "$iface" "$LAST_PID" "$log" || return 1
        # The sidecar configures its own link; give it a bounded moment to bring it up.
        local i
        for ((i = 0; i < 100; i++)); do
            inns "$ns" ip -o addr show dev "$iface" 2>/dev/null | grep -q " $addr/" && return 0
            sleep 0.1
        done
        echo "    $iface: address $addr never appeared" >&2
        return 1
    else
        printf '[Interface]\nPrivateKey = %s\nListenPort = %s\n\n[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\nEndpoint = %s\n' \
            "$key" "$port" "$peer_pub" "$peer_addr" "$peer_endpoint" >"$conf"
        chmod 600 "$conf"
        ip netns exec "$ns" wireguard-go -f "$iface" >"$log" 2>&1 &
        LAST_PID=$!
        PIDS+=("$LAST_PID")
        wait_socket "$iface" "$LAST_PID" "$log" || return 1
        inns "$ns" wg setconf "$iface" "$conf"
        inns "$ns" ip addr add "$addr/32" dev "$iface"
        inns "$ns" ip link set "$iface" mtu 1420 up
        inns "$ns" ip route add "$peer_addr/32" dev "$iface"
    fi
}

stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

rss_mib() { # PID
    awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo "?"
}

# --- measurements ---------------------------------------------------------------------------
# NS_CLIENT SERVER_ADDR [-R]  -> prints Gbit/s as seen by the receiver
iperf() {
    local client_ns=$1 addr=$2 reverse=${3:-} server_ns i out
    [ "$client_ns" = "$NS_A" ] && server_ns=$NS_B || server_ns=$NS_A
    inns "$server_ns" iperf3 -s -1 -B "$addr" >"$WORK/iperf-server.log" 2>&1 &
    local server=$!
    PIDS+=("$server")
    for ((i = 0; i < 100; i++)); do
        inns "$server_ns" ss -Hltn "src $addr" | grep -q ':5201' && break
        sleep 0.05
    done
    if out=$(inns "$client_ns" iperf3 -c "$addr" -t "$DURATION" -f g $reverse 2>&1); then
        awk '/receiver$/ { for (i = 1; i <= NF; i++) if ($(i) == "Gbits/sec") v = $(i - 1) } END { print (v == "" ? "n/a" : v) }' <<<"$out"
    else
        echo "n/a"
        echo "    iperf3 failed: $(tail -n 1 <<<"$out")" >&2
    fi
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
}

first_ping() { # NS ADDR -> RTT of the very first ping in ms (includes the handshake)
    local out
    if out=$(inns "$1" ping -n -c 1 -W 5 "$2" 2>&1); then
        sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' <<<"$out" | head -n 1
    else
        echo "n/a"
    fi
}

rtt() { # NS ADDR -> average RTT in ms, after the tunnel is up
    local out
    if out=$(inns "$1" ping -n -q -c "$PINGS" -i 0.05 -W 2 "$2" 2>&1); then
        awk -F'/' '/^rtt|^round-trip/ { printf "%.3f", $5 }' <<<"$out"
    else
        echo "n/a"
    fi
}

declare -A GBPS RTT RSS FIRST
ORDER=()

record() { # NAME GBPS RTT RSS [FIRST]
    ORDER+=("$1")
    FIRST[$1]=${5:--}
    GBPS[$1]=$2
    RTT[$1]=$3
    RSS[$1]=$4
}

# NAME IMPL_A IMPL_B DIRECTION(a2b|b2a)
tunnel_case() {
    local name=$1 impl_a=$2 impl_b=$3 dir=$4 n=${#ORDER[@]}
    local if_a=mt${sfx}${n}a if_b=mt${sfx}${n}b pid_a pid_b rss_pid="" idle="" after="" g r
    echo "measuring: $name"
    if ! start_end a "$impl_a" "$if_a"; then record "$name" "n/a" "n/a" "-"; return; fi
    pid_a=$LAST_PID
    if ! start_end b "$impl_b" "$if_b"; then stop_pid "$pid_a"; record "$name" "n/a" "n/a" "-"; return; fi
    pid_b=$LAST_PID
    [[ $impl_a == mesh* ]] && rss_pid=$pid_a
    [ -z "$rss_pid" ] && [[ $impl_b == mesh* ]] && rss_pid=$pid_b
    [ -n "$rss_pid" ] && idle=$(rss_mib "$rss_pid")
    local f
    if [ "$dir" = a2b ]; then
        f=$(first_ping "$NS_A" 100.64.0.2)
        r=$(rtt "$NS_A" 100.64.0.2)
        g=$(iperf "$NS_A" 100.64.0.2)
    else
        f=$(first_ping "$NS_B" 100.64.0.1)
        r=$(rtt "$NS_B" 100.64.0.1)
        g=$(iperf "$NS_B" 100.64.0.1)
    fi
    [ -n "$rss_pid" ] && after=$(rss_mib "$rss_pid")
    stop_pid "$pid_b"
    stop_pid "$pid_a"
    local rss="-"
    [ -n "$rss_pid" ] && rss="$idle -> $after"
    record "$name" "$g" "$r" "$rss" "$f"
}

echo "measuring: raw veth"
record "raw veth" "$(iperf "$NS_A" 198.18.0.2)" "$(rtt "$NS_A" 198.18.0.2)" "-"
tunnel_case "wireguard-go -> wireguard-go" wggo wggo a2b
if [ -n "${BASELINE:-}" ]; then
    tunnel_case "baseline mesh-sidecar both" meshbase meshbase a2b
fi
tunnel_case "mesh-sidecar -> mesh-sidecar" mesh mesh a2b
if [ -z "${QUICK:-}" ]; then
    tunnel_case "mesh-sidecar (JIT) both ends" meshjit meshjit a2b
    tunnel_case "mesh-sidecar -> wireguard-go" mesh wggo a2b
    tunnel_case "wireguard-go -> mesh-sidecar" mesh wggo b2a
fi

# --- report ---------------------------------------------------------------------------------
base=${GBPS["wireguard-go -> wireguard-go"]}
echo
echo "single-stream TCP, ${DURATION} s per run, $(nproc) CPUs; 1st ping = first packet through a new tunnel (handshake included);"
echo "RTT = mean of $PINGS pings after it; RSS of mesh-sidecar (side A if it runs there)"
printf '%-30s %10s %10s %11s %10s %22s\n' "path (sender -> receiver)" "Gbit/s" "vs wg-go" "1st ping ms" "RTT ms" "mesh RSS MiB idle->after"
for name in "${ORDER[@]}"; do
    g=${GBPS[$name]}
    ratio="-"
    if [[ $name == *mesh-sidecar* && $g != n/a && $base != n/a ]]; then
        ratio=$(awk -v a="$g" -v b="$base" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
    fi
    printf '%-30s %10s %10s %11s %10s %22s\n' "$name" "$g" "$ratio" "${FIRST[$name]}" "${RTT[$name]}" "${RSS[$name]}"
done
