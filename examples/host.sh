# Sourced by demo.sh and examples/*.sh: checks that this host can run the demos, and installs the
# Debian packages they miss.
#   demo_prepare NAME TOOL=PACKAGE...   e.g. demo_prepare demo ip=iproute2 ping=iputils-ping
demo_prepare() {
    local name=$1 spec missing=()
    shift
    if [ "$(id -u)" != 0 ]; then
        echo "$name: must run as root (it creates network namespaces and TUN devices); try: sudo $0" >&2
        exit 1
    fi
    for spec in "$@"; do
        command -v "${spec%%=*}" >/dev/null || missing+=("${spec#*=}")
    done
    if ((${#missing[@]})); then
        if command -v apt-get >/dev/null; then
            echo "==> installing ${missing[*]}"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        else
            echo "$name: missing packages: ${missing[*]}" >&2
            exit 1
        fi
    fi
    command -v dotnet >/dev/null || { echo "$name: missing the .NET 10 SDK (dotnet); see https://dotnet.microsoft.com/download" >&2; exit 1; }
    [ -e /dev/net/tun ] || { echo "$name: /dev/net/tun is missing (modprobe tun)" >&2; exit 1; }
    export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
}
