#!/usr/bin/env bash
# Installs the Debian packages given that are not installed yet; the one way the setup
# scripts install packages. Quick when nothing is missing (it only asks dpkg).
#   scripts/apt-install.sh WHO PACKAGE...     WHO prefixes the log lines
# With HARNESS_APT_ARCHIVES set to a directory, apt keeps the .deb files it downloads there
# and installs from them when they are present, so a CI cache of that directory spares the
# downloads.
set -euo pipefail
who="$1"
shift
log() { printf '%s: %s\n' "$who" "$*"; }

missing=()
for pkg in "$@"; do
    if [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]} == 0)); then
    log "apt packages already installed: $*"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "$who: run as root to install ${missing[*]} (apt-get)" >&2
    exit 1
fi
log "installing apt packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Other processes (another install, unattended upgrades) may hold the dpkg lock: wait.
apt_get=(apt-get -o DPkg::Lock::Timeout=300 -y -q)
if [[ -n ${HARNESS_APT_ARCHIVES:-} ]]; then
    mkdir -p "$HARNESS_APT_ARCHIVES/partial"
    apt_get+=(-o "Dir::Cache::Archives=$HARNESS_APT_ARCHIVES" -o APT::Keep-Downloaded-Packages=true)
fi
# On a fresh machine the package lists may be empty or stale: refresh once and retry.
if ! "${apt_get[@]}" install --no-install-recommends "${missing[@]}"; then
    "${apt_get[@]}" update
    "${apt_get[@]}" install --no-install-recommends "${missing[@]}"
fi
