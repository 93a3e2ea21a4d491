#!/usr/bin/env bash
# Installs what building the eBPF crate (ebpf/) needs: the nightly toolchain's rust-src and
# bpf-linker linked against the nightly's own libLLVM. Idempotent: every step is skipped when
# its result is already in place. Run as root on Debian bookworm (or any machine with rustup).
#
# Why link against the nightly's libLLVM: bpf-linker must use the same LLVM major version as
# the rustc that emits the bitcode, and Debian bookworm ships no LLVM new enough (<= 19).
set -euo pipefail

BPF_LINKER_VERSION=0.13.0
# LLVM majors bpf-linker 0.13 has cargo features for.
SUPPORTED_LLVM_MAJORS="21 22 23"

say() { printf 'setup-bpf: %s\n' "$*"; }
die() { printf 'setup-bpf: error: %s\n' "$*" >&2; exit 1; }

command -v rustup >/dev/null 2>&1 \
    || die "rustup not found; install Rust with rustup first (https://rustup.rs), then re-run"

# Use the nightly that is installed; install one only when none is (never update it).
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    say "no nightly toolchain installed; installing one (minimal profile)"
    rustup toolchain install nightly --profile minimal
fi

if rustup component list --toolchain nightly --installed | grep -q '^rust-src'; then
    say "rust-src for nightly already installed"
else
    say "adding rust-src to nightly (build-std needs it for the bpf target)"
    rustup component add rust-src --toolchain nightly
fi

if ! command -v cc >/dev/null 2>&1; then
    say "no C compiler found; installing build-essential (bpf-linker's build needs cc)"
    "$(dirname "$0")/apt-install.sh" setup-bpf build-essential
fi

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
export PATH="$cargo_home/bin:$PATH"

if bpf-linker --version >/dev/null 2>&1; then
    say "bpf-linker already works: $(bpf-linker --version)"
    exit 0
fi

sysroot="$(rustc +nightly --print sysroot)"
llvm_major="$(rustc +nightly -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')"
[[ -n "$llvm_major" ]] || die "could not read the LLVM version from 'rustc +nightly -vV'"
case " $SUPPORTED_LLVM_MAJORS " in
    *" $llvm_major "*) ;;
    *) die "nightly uses LLVM $llvm_major but bpf-linker $BPF_LINKER_VERSION supports LLVM $SUPPORTED_LLVM_MAJORS; use a nightly with one of those" ;;
esac

shopt -s nullglob
libllvm_candidates=("$sysroot"/lib/libLLVM.so.*)
shopt -u nullglob
[[ ${#libllvm_candidates[@]} -eq 1 ]] \
    || die "expected exactly one libLLVM.so.* in $sysroot/lib, found ${#libllvm_candidates[@]}; is the nightly complete?"
libllvm="${libllvm_candidates[0]}"

# The installed bpf-linker finds libLLVM through this directory at run time: keep it.
llvm_prefix="$cargo_home/bpf-linker-llvm"
mkdir -p "$llvm_prefix/lib"
ln -sfn "$libllvm" "$llvm_prefix/lib/libLLVM.so"
ln -sfn "$libllvm" "$llvm_prefix/lib/$(basename "$libllvm")"

say "building bpf-linker $BPF_LINKER_VERSION against $(basename "$libllvm") (LLVM $llvm_major)"
LLVM_PREFIX="$llvm_prefix" cargo install bpf-linker \
    --version "$BPF_LINKER_VERSION" --no-default-features --features "llvm-$llvm_major" --locked --force

bpf-linker --version >/dev/null 2>&1 \
    || die "bpf-linker was installed but does not run; check that $llvm_prefix/lib/libLLVM.so resolves"
say "installed $(bpf-linker --version)"
