#!/usr/bin/env bash
# WireGuard core micro-benchmarks: prints figures, never passes or fails on them.
#
# Runs tests/bench/Mesh.Benchmarks (BenchmarkDotNet, Release, the short in-process "Micro" job of
# MicroConfig.cs) and summarises its CSV reports as per-core figures:
#   transport   Gbit/s per core = 1420 B × 8 / mean ns per packet, and managed bytes allocated per
#               packet (the data path's target is 0 B);
#   handshakes  operations per second per core (1e9 / mean ns), and bytes allocated per handshake;
#   lookups     millions of operations per second per core.
# Every benchmark runs on one thread, so "per core" is simply the single-thread rate. On a shared
# or busy machine the figures drop; the load average is printed alongside them for that reason.
# Takes under a minute once built (about 45 s for all benchmarks on a 2-core machine).
#
# Usage: tests/bench/micro.sh [BenchmarkDotNet arguments]
#   tests/bench/micro.sh                              all benchmarks
#   tests/bench/micro.sh --filter '*Transport*'       one class
# Reports (CSV, GitHub markdown) stay in BenchmarkDotNet.Artifacts/micro/results/.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v dotnet >/dev/null || { echo "micro: dotnet not found" >&2; exit 1; }
command -v python3 >/dev/null || { echo "micro: python3 not found (used to read the CSV reports)" >&2; exit 1; }

artifacts=BenchmarkDotNet.Artifacts/micro
rm -rf "$artifacts/results"

args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--filter '*')

dotnet build -c Release --nologo -v q tests/bench/Mesh.Benchmarks >/dev/null
dotnet run -c Release --no-build --project tests/bench/Mesh.Benchmarks -- \
    --artifacts "$artifacts" "${args[@]}"

ARTIFACTS="$artifacts/results" python3 - <<'PY'
import csv, glob, os, platform

PACKET = 1420  # TransportBenchmarks.PacketSize

def number(text):
    text = (text or "").strip().replace(",", "")
    if text in ("", "-", "NA", "?"):
        return None
    try:
        return float(text)
    except ValueError:
        return None

rows = {}
for path in sorted(glob.glob(os.path.join(os.environ["ARTIFACTS"], "*-report.csv"))):
    cls = os.path.basename(path).split("-report")[0].rsplit(".", 1)[-1]
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            method = row["Method"].strip("'")
            rows[(cls, method)] = (number(row.get("Mean [ns]")), number(row.get("Allocated [B]")))

def show(title, header, cls, items, figure):
    present = [(m, label) for m, label in items if (cls, m) in rows]
    if not present:
        return
    print(f"\n{title}")
    print(f"  {'':34} {'mean':>13}  {header:>16}  {'alloc/op':>10}")
    for method, label in present:
        mean, alloc = rows[(cls, method)]
        if mean is None:
            print(f"  {label:34} {'failed':>13}")
            continue
        alloc_text = "?" if alloc is None else f"{alloc:.0f} B"
        print(f"  {label:34} {mean:>10.1f} ns  {figure(mean):>16}  {alloc_text:>10}")

cpu = platform.processor() or platform.machine()
try:
    with open("/proc/cpuinfo") as f:
        cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
except (OSError, StopIteration):
    pass
load = " ".join(f"{x:.2f}" for x in os.getloadavg())
print("\n==== MeshOperator micro-benchmarks (one thread each = per core) ====")
print(f"cpu: {cpu}; {os.cpu_count()} logical cores; load average {load}")

show(f"Transport, {PACKET}-byte IPv4 packet", "Gbit/s per core", "TransportBenchmarks", [
    ("ChaCha20Poly1305.Encrypt (raw)", "ChaCha20Poly1305.Encrypt (raw)"),
    ("Encapsulate", "Encapsulate"),
    ("Decapsulate", "Decapsulate"),
    ("RoundTrip", "Encapsulate + Decapsulate"),
], lambda ns: f"{PACKET * 8 / ns:.2f}")

show("Handshake", "per second/core", "HandshakeBenchmarks", [
    ("ConsumeInitiation", "Initiation -> response (responder)"),
    ("CreateInitiation", "Create initiation (initiator)"),
    ("X25519.SharedSecret (raw)", "X25519.SharedSecret (ours)"),
    ("X25519.PublicKey (raw)", "X25519.PublicKey (ours)"),
    ("crypto_scalarmult_curve25519 (libsodium)", "libsodium scalarmult (floor)"),
    ("crypto_scalarmult_curve25519_base (libsodium)", "libsodium scalarmult_base (floor)"),
], lambda ns: f"{1e9 / ns:,.0f}")

show("Lookups", "M/s per core", "LookupBenchmarks", [
    ("LookupV4", "AllowedIps.Lookup, 1000 v4 prefixes"),
    ("LookupV6", "AllowedIps.Lookup, 1000 v6 prefixes"),
    ("ReplayWindowInOrder", "ReplayWindow.TryAccept, in order"),
], lambda ns: f"{1e3 / ns:,.1f}")

if not rows:
    print("\nno CSV reports found: did the filter match any benchmark?")
PY
