//! Linker arguments for the eBPF object (only when building for the bpf target).
//!
//! bpf-linker passes `--bpf-expand-memcpy-in-order` to LLVM by default, which turns off
//! LLVM's generic expansion of every memory intrinsic and expands only memcpy itself: a
//! struct initialised with zeroes then becomes a call to a `memset` that loops. Kernels
//! before 5.3 reject any loop ("back-edge from insn …"), so 5.2 refused every program.
//! Without the flag LLVM expands memset and memcpy into plain stores.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("bpf") {
        println!("cargo:rustc-link-arg=--disable-expand-memcpy-in-order");
    }
}
