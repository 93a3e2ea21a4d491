//! Opening files that someone else can put in the harness's way: cases, kernels.toml,
//! results files, the cache's memos, a case's `file:` descriptor. Any of them can be a
//! FIFO (open() blocks until a writer comes), a device (`/dev/zero` never ends) or far
//! larger than such a file ever is; each is refused at once, before a byte is read.

use std::{
    fs::{File, Metadata, OpenOptions},
    io::{self, Read},
    os::unix::fs::{FileTypeExt, OpenOptionsExt},
    path::Path,
};

/// Opens `path` for reading without ever blocking in open(2) (`O_NONBLOCK`: a FIFO opens at
/// once) nor making a terminal the controlling one, and says what it is.
pub fn open_without_blocking(path: &Path) -> io::Result<(File, Metadata)> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    Ok((file, meta))
}

/// `path` opened for reading when it is a regular file of at most `max_bytes`; a FIFO, a
/// device, a socket or a larger file is an error saying which.
pub fn open_regular(path: &Path, max_bytes: u64) -> io::Result<File> {
    let (file, meta) = open_without_blocking(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file but {}", kind(&meta)),
        ));
    }
    if meta.len() > max_bytes {
        return Err(too_large(max_bytes));
    }
    Ok(file)
}

/// The contents of the regular file `path`, refused as [`open_regular`] refuses it; a file
/// that grows past `max_bytes` while it is read is refused too.
pub fn read_regular(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_regular(path, max_bytes)?
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(max_bytes));
    }
    Ok(bytes)
}

/// What a file that is not a regular one is, for messages.
pub fn kind(meta: &Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a regular file"
    }
}

fn too_large(max_bytes: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("larger than {max_bytes} bytes, the most this file may have"),
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn fifo(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("fifo");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
        path
    }

    #[test]
    fn a_fifo_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let error = read_regular(&fifo(dir.path()), 1024).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(error.to_string(), "not a regular file but a FIFO");
    }

    #[test]
    fn a_link_to_a_device_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("zero.json");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let error = read_regular(&link, 1 << 30).unwrap_err();
        assert_eq!(
            error.to_string(),
            "not a regular file but a character device"
        );
    }

    #[test]
    fn a_larger_file_is_refused_and_a_regular_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_regular(&path, 5).unwrap(), b"12345");
        let error = read_regular(&path, 4).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(
            error.to_string(),
            "larger than 4 bytes, the most this file may have"
        );
        assert_eq!(
            read_regular(dir.path(), 5).unwrap_err().to_string(),
            "not a regular file but a directory"
        );
    }
}
