//! eBPF programs that call `bpf_sk_storage_get` / `bpf_sk_storage_delete` at points of a
//! socket's life: per hook one program per helper set (get, delete, both), all driven by
//! the same parameters (`ProgramConfig` and the sock_ops call lists, written by the
//! harness) and all reporting what the calls did through one queue of `HelperRecord`s.
//!
//! Every program follows the same steps (see `observe` in `programs.rs`): apply its
//! filters, make the calls of its list in order (get, delete, write into the storage the
//! last get returned), record each outcome, then update the storage the last get returned
//! (count the event, add packet bytes, or store a setsockopt value). The record holds the
//! storage as each get returned it, before later calls and the update, so "created with the
//! init value", "zero-initialised" and "existing storage returned unchanged" are all
//! observable.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
// Atomic adds on map values: see `programs::atomic_add`. The crate is built on nightly.
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]
#![cfg_attr(
    target_arch = "bpf",
    expect(internal_features, reason = "core_intrinsics for atomic_xadd")
)]

#[cfg(target_arch = "bpf")]
mod programs;

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: the programs contain no panicking code paths (the verifier would reject the
    // unbounded loop a real handler needs), so this is never reached.
    unsafe { core::hint::unreachable_unchecked() }
}

/// The crate only means something for the bpf target; on the host it is an empty binary so
/// that workspace-wide commands (`cargo check --workspace`) still succeed.
#[cfg(not(target_arch = "bpf"))]
fn main() {}
