#!/usr/bin/env bash
# Installs what the report tests check the reports with, from Debian's packages:
#   chromium        headless, loads report.html and dumps its DOM and a screenshot
#                   (harness/tests/integration/report_page.rs)
#   fonts-liberation  a sans-serif and a monospace font, so the screenshot has text in it
#   libxml2-utils   xmllint, which validates junit.xml against the JUnit schema
#                   (harness/tests/integration/report.rs)
# Idempotent: a second run only asks dpkg. Run as root on Debian bookworm.
set -euo pipefail

APT_PACKAGES=(chromium fonts-liberation libxml2-utils)

"$(dirname "$0")/apt-install.sh" setup-browser "${APT_PACKAGES[@]}"
