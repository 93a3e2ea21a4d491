#!/usr/bin/env bash
# Installs what the harness's VM backend needs to boot kernels with virtme-ng (vng):
#   - Debian packages: QEMU, the busybox/kmod/udev/file tools vng puts in the guest,
#     Python's venv, the libraries virtiofsd links against, and the Debian archive keyring
#     the harness verifies Debian's kernel indexes with;
#   - virtme-ng from PyPI into a virtualenv owned by the project;
#   - virtiofsd (not packaged for bookworm) built by cargo into the same venv's bin/;
#   - for arm64 kernels: QEMU's aarch64 emulator, rustup's aarch64-unknown-linux-musl
#     target and Debian's aarch64 C cross compiler, with which cargo builds the static
#     harness-guest arm64 guests run (docs/src/arm64.md).
# Idempotent: every step is skipped when already satisfied, so a second run takes about
# a second. Run as root on Debian bookworm.
#
# Afterwards vng, virtme-run and virtiofsd all live in "$HARNESS_TOOLS/venv/bin"; the harness
# looks there first, then on PATH. To use vng by hand: export PATH="$HARNESS_TOOLS/venv/bin:$PATH"
set -euo pipefail

HARNESS_TOOLS="${HARNESS_TOOLS:-${XDG_DATA_HOME:-$HOME/.local/share}/sk-storage-harness}"
VENV="$HARNESS_TOOLS/venv"
# Pinned so every machine boots guests with the same vng behaviour; bump deliberately.
VIRTME_NG_VERSION=1.42
VIRTIOFSD_VERSION=1.14.0

APT_PACKAGES=(
    qemu-system-x86 # the emulator itself (KVM or TCG)
    qemu-system-arm # qemu-system-aarch64, for arm64 kernels (TCG on an x86_64 host)
    gcc-aarch64-linux-gnu # the C that the aarch64 harness's crates compile (ring, liblzma)
    busybox-static  # vng's guest init, and the shell of the harness's minimal guest root
    kmod            # depmod/modprobe for the guest kernel's modules (virtiofs is a module <6.12)
    udev            # guests on the host's root (--guest-root host) start udevd
    file            # vng inspects the kernel image type
    patch           # applies scripts/patches/ to virtme-ng
    python3
    python3-venv
    libseccomp-dev # virtiofsd links libseccomp
    libcap-ng-dev  # virtiofsd links libcap-ng
    pkg-config
    gcc # cargo links with cc
    # Verifies the Debian suites' InRelease files; Debian has it, Ubuntu (CI runners) not.
    debian-archive-keyring
)

log() { printf 'setup-vm: %s\n' "$*"; }

if [[ $(id -u) -ne 0 ]]; then
    echo "setup-vm: run as root (apt-get install and qemu need it)" >&2
    exit 1
fi

"$(dirname "$0")/apt-install.sh" setup-vm "${APT_PACKAGES[@]}"
# bpftool, for `harness shell`'s guests; Debian packages it, Ubuntu (CI runners) not by
# that name, and runs need none.
"$(dirname "$0")/apt-install.sh" setup-vm bpftool || log "no bpftool package: harness shell's guests have none"

# virtme-ng: checking the dist-info directory avoids starting Python on the fast path.
if compgen -G "$VENV/lib/python3*/site-packages/virtme_ng-$VIRTME_NG_VERSION.dist-info" >/dev/null \
    && [[ -x $VENV/bin/vng ]]; then
    log "virtme-ng $VIRTME_NG_VERSION already in $VENV"
else
    log "installing virtme-ng $VIRTME_NG_VERSION into $VENV"
    mkdir -p "$HARNESS_TOOLS"
    # Debian's interpreter, not whatever python3 comes first on PATH (pyenv, conda), so the
    # venv does not break when a user's Python manager changes versions.
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "virtme-ng==$VIRTME_NG_VERSION"
fi

# Fixes carried until virtme-ng has them (each patch's head says why), in this order:
# each applied once; `patch -R --dry-run` succeeding means it is already in.
VNG_PATCHES=(
    virtme-ng-virtiofsd-poll.patch           # poll for virtiofsd from 5 ms, not 100
    virtme-ng-one-serial-device.patch        # one virtio-serial device for all script ports
    virtme-ng-lazy-mainline-import.patch     # no `requests` import on every start
    virtme-ng-xz-modules.patch               # the host decompresses .ko.xz, not the guest
    virtme-ng-root-setup-in-initramfs.patch  # no second shell before init on --root
    virtme-ng-virtme-run-in-process.patch    # no shell and second Python for virtme-run
    virtme-ng-one-modprobe.patch             # one modprobe for all module aliases
    virtme-ng-no-virtio-mmio-on-pci.patch    # no virtio_mmio module on q35/pc
    virtme-ng-virtiofsd-found-once.patch     # virtiofsd looked for once, not per share
)
site_packages=$(compgen -G "$VENV/lib/python3*/site-packages" | head -n1)
patches_dir="$(cd "$(dirname "$0")" && pwd)/patches"
for name in "${VNG_PATCHES[@]}"; do
    vng_patch="$patches_dir/$name"
    if patch -d "$site_packages" -p1 -R --dry-run --silent <"$vng_patch" >/dev/null 2>&1; then
        log "virtme-ng already has $name"
    else
        log "patching virtme-ng: $name"
        patch -d "$site_packages" -p1 --forward --silent <"$vng_patch"
    fi
done

if [[ -x $VENV/bin/virtiofsd ]] \
    && [[ $("$VENV/bin/virtiofsd" --version 2>/dev/null) == *"$VIRTIOFSD_VERSION"* ]]; then
    log "virtiofsd $VIRTIOFSD_VERSION already in $VENV/bin"
else
    if ! command -v cargo >/dev/null; then
        echo "setup-vm: cargo not found; install Rust with rustup, then run this script again" >&2
        exit 1
    fi
    log "building virtiofsd $VIRTIOFSD_VERSION (about a minute)"
    # --root puts the binary in the venv's bin/, next to vng, so one PATH entry finds all.
    cargo install --quiet --locked --root "$VENV" --version "$VIRTIOFSD_VERSION" virtiofsd
fi

# The Rust standard library of the arm64 guests' harness (static, musl).
if ! command -v rustup >/dev/null; then
    echo "setup-vm: rustup not found; install Rust with rustup, then run this script again" >&2
    exit 1
fi
if rustup target list --installed | grep -qx aarch64-unknown-linux-musl; then
    log "rust target aarch64-unknown-linux-musl already installed"
else
    log "adding rust target aarch64-unknown-linux-musl"
    rustup target add aarch64-unknown-linux-musl
fi

log "ready: vng is $VENV/bin/vng"
log "to run vng by hand: export PATH=\"$VENV/bin:\$PATH\""
