#!/usr/bin/env bash
# Installs mdbook, which builds the book in docs/ (`mdbook build docs`, run by scripts/test),
# into the harness's tools directory: "$HARNESS_TOOLS/mdbook/bin/mdbook". Debian has no
# package of it, so it is built from crates.io with cargo (a few minutes, once). Idempotent:
# quick when the pinned version is already there. Needs no root.
set -euo pipefail

HARNESS_TOOLS="${HARNESS_TOOLS:-${XDG_DATA_HOME:-$HOME/.local/share}/sk-storage-harness}"
ROOT="$HARNESS_TOOLS/mdbook"
# Pinned so every machine builds the book alike; bump deliberately (book.toml follows its
# configuration format).
MDBOOK_VERSION=0.5.4

log() { printf 'setup-docs: %s\n' "$*"; }
die() { printf 'setup-docs: error: %s\n' "$*" >&2; exit 1; }

if [[ "$("$ROOT/bin/mdbook" --version 2>/dev/null)" == "mdbook v$MDBOOK_VERSION" ]]; then
    log "mdbook $MDBOOK_VERSION already in $ROOT/bin"
    exit 0
fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
command -v cargo >/dev/null 2>&1 \
    || die "cargo not found; install Rust with rustup first (https://rustup.rs), then re-run"
log "building mdbook $MDBOOK_VERSION into $ROOT (a few minutes, once)"
# --locked: the dependency versions mdbook was released with.
cargo install mdbook --version "$MDBOOK_VERSION" --locked --root "$ROOT"
log "ready: $("$ROOT/bin/mdbook" --version)"
