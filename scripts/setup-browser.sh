#!/usr/bin/env bash
# Installs what the report tests check the reports with, from Debian's packages:
#   chromium        headless, loads report.html and dumps its DOM and a screenshot
#                   (harness/tests/report_page.rs)
#   fonts-liberation  a sans-serif and a monospace font, so the screenshot has text in it
#   libxml2-utils   xmllint, which validates junit.xml against the JUnit schema
#                   (harness/tests/report.rs)
# Idempotent: a second run only asks dpkg. Run as root on Debian bookworm.
set -euo pipefail

APT_PACKAGES=(chromium fonts-liberation libxml2-utils)

log() { printf 'setup-browser: %s\n' "$*"; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]} == 0)); then
    log "chromium and xmllint already installed"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "setup-browser: run as root to install ${missing[*]} (apt-get)" >&2
    exit 1
fi
log "installing apt packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Other processes (another install, unattended upgrades) may hold the dpkg lock: wait.
apt_get=(apt-get -o DPkg::Lock::Timeout=300 -y -q)
# On a fresh machine the package lists may be empty or stale: refresh once and retry.
if ! "${apt_get[@]}" install --no-install-recommends "${missing[@]}"; then
    "${apt_get[@]}" update
    "${apt_get[@]}" install --no-install-recommends "${missing[@]}"
fi
log "ready: $(chromium --version 2>/dev/null || echo chromium), $(xmllint --version 2>&1 | head -n 1)"
