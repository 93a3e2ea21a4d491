//! The kernel matrix: `kernels.toml` → validated entries → runnable kernels.
//!
//! Stages, one file each: [`config`] parses and validates the file; [`mirror`] picks the
//! Debian mirror; [`index`] reads a suite's signed index and [`select`] picks a kernel's
//! packages from it; [`download`] fetches files against their SHA256; [`unpack`] extracts
//! the .debs; [`guest_tools`] gets the static programs a foreign architecture's guest
//! runs; [`cache`] keeps all of it under the user's cache directory; [`resolve`] ties
//! them together behind [`Resolver`].
//!
//! ```no_run
//! use harness::kernels::{KernelCache, KernelsFile, Resolver, ResolvedKernel};
//! let file = KernelsFile::load("kernels.toml".as_ref())?;
//! let mut resolver = Resolver::new(&file, KernelCache::at(KernelCache::default_root()?));
//! for entry in &file.kernels {
//!     if let ResolvedKernel::Bootable(kernel) = resolver.resolve(entry)? {
//!         println!("{}: vng -r {}", kernel.name, kernel.vmlinuz.display());
//!     }
//! }
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod build;
mod cache;
mod config;
mod download;
mod guest_tools;
mod index;
mod ladder;
mod mirror;
mod resolve;
mod select;
pub(crate) mod unpack;

pub use cache::{CacheError, KernelCache};
pub use config::{
    ConfigError, DEFAULT_FLAVOUR, DEFAULT_KEYRING, DebianSelector, DebianSource, KernelEntry,
    KernelSource, KernelsFile, MIRROR_ENV, MemorySize, is_flavour, is_suite_name,
};
pub use download::{FetchError, NoProgress, Progress};
pub use guest_tools::{GuestPrograms, GuestTools};
pub use index::IndexError;
pub use ladder::{LadderError, append_debian_ladder, append_debian_release};
pub use mirror::NoMirror;
pub use resolve::{
    BootableKernel, CacheState, KernelStatus, ResolveError, ResolvedKernel, Resolver,
};
pub use select::{SelectError, upstream_version};
pub use unpack::{ImageInfo, UnpackError, image_info, image_release};
