#!/usr/bin/env bash
# Runs every test of the repository: installs the Debian packages the tests need (when missing and
# we are root), builds the solution in Release and runs every test project. Prints one closing
# line "tests: N passed, N failed, N skipped". Extra arguments go to `dotnet test`
# (for example: tests/run.sh --filter-class '*Replay*').
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v wg >/dev/null || need+=(wireguard-tools)
command -v wireguard-go >/dev/null || need+=(wireguard-go)
command -v iperf3 >/dev/null || need+=(iperf3)
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
command -v iptables >/dev/null || need+=(iptables)
if ((${#need[@]})); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing: ${need[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
        echo "warning: missing ${need[*]}; the tests that need them will be skipped with a message" >&2
    fi
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build MeshOperator.sln -c Release -nologo -clp:ErrorsOnly

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
dotnet test --solution MeshOperator.sln -c Release --no-build --ignore-exit-code 8 "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
passed=$(awk '/^  succeeded:/ {s+=$2} END {print s+0}' "$log")
failed=$(awk '/^  failed:/ {s+=$2} END {print s+0}' "$log")
skipped=$(awk '/^  skipped:/ {s+=$2} END {print s+0}' "$log")
echo "tests: $passed passed, $failed failed, $skipped skipped"
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then echo "dotnet test exited $rc" >&2; fi
exit "$rc"
