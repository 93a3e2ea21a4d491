//! sk-storage harness: runs `BPF_MAP_TYPE_SK_STORAGE` behaviour cases on real kernels.
//!
//! Data flows one way through the modules: `case` (YAML → validated cases) → `exec`
//! (runs a case on the running kernel, here or inside a guest) → `results` (one
//! serialisable model) → `report` (terminal, JSON, …). `cli` wires them together.

pub mod bpf;
pub mod case;
pub mod cli;
pub mod errno;
pub mod exec;
pub mod kernels;
pub mod report;
pub mod results;
pub mod vm;
