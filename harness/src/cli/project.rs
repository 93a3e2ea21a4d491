//! The project a command runs in, found as cargo finds its manifest: the nearest directory,
//! this one or above, that has a `kernels.toml`. The case directory, the kernel list and
//! the report directories default to the project's, so that the harness works from any
//! directory inside it; a path given on the command line is taken as given.

use std::path::{Path, PathBuf};

/// The file whose directory is the project's root.
const MARKER: &str = "kernels.toml";

/// `relative` (a default such as `cases`) in the project: as it is when the project's root
/// is this directory or there is no project, else under the root above.
pub(super) fn path(relative: &str) -> PathBuf {
    let Ok(here) = std::env::current_dir() else {
        return relative.into();
    };
    match root_above(&here) {
        Some(root) if root != here => root.join(relative),
        _ => relative.into(),
    }
}

/// The nearest of `dir` and its ancestors that has the marker.
fn root_above(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|dir| dir.join(MARKER).is_file())
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_nearest_directory_with_a_kernel_list() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("cases/selftest");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(root_above(&deep), None.or(root_above(dir.path())));
        std::fs::write(dir.path().join(MARKER), "").unwrap();
        assert_eq!(root_above(&deep).as_deref(), Some(dir.path()));
        assert_eq!(root_above(dir.path()).as_deref(), Some(dir.path()));
    }
}
