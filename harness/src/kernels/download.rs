//! HTTP downloads checked against a size and SHA256 taken from a signed index.
//!
//! Nothing is trusted before its digest matches: small documents are checked in memory,
//! files are streamed into a temporary file beside their destination and renamed into
//! place only after the digest matches, so a cache never holds a partial download under
//! its final name.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Size and SHA256 (lowercase hex) of a file as an index lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileDigest {
    pub size: u64,
    pub sha256: String,
}

/// Receives download progress, e.g. to drive a progress bar.
pub trait Progress {
    /// A download of `total_bytes` named `label` starts.
    fn begin(&self, label: &str, total_bytes: u64);
    /// `bytes` more arrived.
    fn advance(&self, bytes: u64);
    /// The download ended (successfully or not).
    fn end(&self);
}

/// Ignores progress.
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn end(&self) {}
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("GET {url} failed (check that the mirror is reachable; proxy variables are honoured)")]
    Request {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("GET {url}: the server answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error(
        "{url}: expected {expected} bytes, received {actual}; the mirror is probably being updated, try again"
    )]
    Size {
        url: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "{url}: SHA256 {actual} does not match {expected} from the signed index; the mirror or a proxy served a different file"
    )]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("cannot read the body of {url}")]
    Read {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl FetchError {
    /// The HTTP status, when the server answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Lowercase hex SHA256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the file at `path` has exactly this size and SHA256.
pub fn file_matches(path: &Path, expected: &FileDigest) -> std::io::Result<bool> {
    let mut file = std::fs::File::open(path)?;
    if file.metadata()?.len() != expected.size {
        return Ok(false);
    }
    let (_, sha256) =
        stream(&mut file, &mut std::io::sink(), &NoProgress).map_err(|e| match e {
            StreamError::Read(e) | StreamError::Write(e) => e,
        })?;
    Ok(sha256 == expected.sha256)
}

/// A blocking HTTP client with a timeout on every phase of every request.
pub struct Http {
    agent: ureq::Agent,
}

/// Connection set-up and the wait for response headers.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// No single read may stall longer than this; a slow but moving download is not cut.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
const CHUNK: usize = 256 * 1024;

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    /// Trusts the system CA store (TLS-intercepting proxies and local CAs install their
    /// roots there) and reads proxy settings from the environment.
    pub fn new() -> Http {
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .timeout_resolve(Some(CONNECT_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_send_request(Some(RESPONSE_TIMEOUT))
            .timeout_recv_response(Some(RESPONSE_TIMEOUT))
            .timeout_per_read(Some(STALL_TIMEOUT))
            .user_agent(concat!("sk-storage-harness/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Http { agent }
    }

    fn open(&self, url: &str) -> Result<ureq::Body, FetchError> {
        match self.agent.get(url).call() {
            Ok(response) => Ok(response.into_body()),
            Err(ureq::Error::StatusCode(status)) => Err(FetchError::Status {
                url: url.to_string(),
                status,
            }),
            Err(source) => Err(FetchError::Request {
                url: url.to_string(),
                source: Box::new(source),
            }),
        }
    }

    /// The whole body of a small document, refusing more than `limit` bytes.
    pub fn get(&self, url: &str, limit: u64) -> Result<Vec<u8>, FetchError> {
        let mut body = Vec::new();
        self.open(url)?
            .into_reader()
            .take(limit + 1)
            .read_to_end(&mut body)
            .map_err(|source| FetchError::Read {
                url: url.to_string(),
                source,
            })?;
        if body.len() as u64 > limit {
            return Err(FetchError::Size {
                url: url.to_string(),
                expected: limit,
                actual: body.len() as u64,
            });
        }
        Ok(body)
    }

    /// A document whose size and SHA256 are known in advance, checked in memory.
    pub fn get_verified(&self, url: &str, expected: &FileDigest) -> Result<Vec<u8>, FetchError> {
        let body = self.get(url, expected.size)?;
        check_digest(url, expected, body.len() as u64, &sha256_hex(&body))?;
        Ok(body)
    }

    /// Streams `url` into a temporary file beside `dest`, hashing as it arrives, and renames
    /// it to `dest` only when size and SHA256 match; on any error nothing is left behind.
    pub fn download_verified(
        &self,
        url: &str,
        expected: &FileDigest,
        dest: &Path,
        label: &str,
        progress: &dyn Progress,
    ) -> Result<(), FetchError> {
        let dir = dest.parent().unwrap_or(Path::new("."));
        let write_error = |source| FetchError::Write {
            path: dest.to_path_buf(),
            source,
        };
        let mut temp = tempfile::Builder::new()
            .prefix(&partial_prefix(dest))
            .suffix(PARTIAL_SUFFIX)
            .tempfile_in(dir)
            .map_err(write_error)?;
        let mut reader = self.open(url)?.into_reader().take(expected.size + 1);
        progress.begin(label, expected.size);
        let streamed = stream(&mut reader, temp.as_file_mut(), progress);
        progress.end();
        let (received, sha256) = streamed.map_err(|e| match e {
            StreamError::Read(source) => FetchError::Read {
                url: url.to_string(),
                source,
            },
            StreamError::Write(source) => write_error(source),
        })?;
        check_digest(url, expected, received, &sha256)?;
        temp.as_file().sync_all().map_err(write_error)?;
        temp.persist(dest).map_err(|e| write_error(e.error))?;
        Ok(())
    }
}

/// A download in progress is `.<file name>.<random>.part` beside its destination, so that
/// one left by a killed process can be recognised and removed.
pub const PARTIAL_SUFFIX: &str = ".part";

pub fn partial_prefix(dest: &Path) -> String {
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    format!(".{name}.")
}

enum StreamError {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Copies `reader` to `out`, returning the byte count and SHA256.
fn stream(
    reader: &mut impl Read,
    out: &mut impl Write,
    progress: &dyn Progress,
) -> Result<(u64, String), StreamError> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StreamError::Read(e)),
        };
        hasher.update(&buffer[..n]);
        out.write_all(&buffer[..n]).map_err(StreamError::Write)?;
        total += n as u64;
        progress.advance(n as u64);
    }
    Ok((total, hex(&hasher.finalize())))
}

fn check_digest(
    url: &str,
    expected: &FileDigest,
    size: u64,
    sha256: &str,
) -> Result<(), FetchError> {
    if size != expected.size {
        return Err(FetchError::Size {
            url: url.to_string(),
            expected: expected.size,
            actual: size,
        });
    }
    if sha256 != expected.sha256 {
        return Err(FetchError::Checksum {
            url: url.to_string(),
            expected: expected.sha256.clone(),
            actual: sha256.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_server {
    //! A loopback HTTP server serving fixed files, for tests that must not need a mirror.

    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    /// Serves `files` (path → body) on 127.0.0.1 until dropped; counts requests per path.
    pub struct TestServer {
        pub base_url: String,
        pub files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
        pub hits: Arc<Mutex<HashMap<String, usize>>>,
    }

    impl TestServer {
        pub fn start(files: HashMap<String, Vec<u8>>) -> TestServer {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
            let base_url = format!("http://{}", listener.local_addr().expect("local addr"));
            let files = Arc::new(Mutex::new(files));
            let hits = Arc::new(Mutex::new(HashMap::new()));
            let (served, counted) = (files.clone(), hits.clone());
            // The thread ends with the test process; each test binds its own port.
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    let mut request_line = String::new();
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    if reader.read_line(&mut request_line).is_err() {
                        continue;
                    }
                    // Drain the headers.
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                        line.clear();
                    }
                    let path = request_line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("")
                        .to_string();
                    *counted.lock().unwrap().entry(path.clone()).or_default() += 1;
                    let body = served.lock().unwrap().get(&path).cloned();
                    let _ = match body {
                        Some(body) => stream
                            .write_all(
                                format!(
                                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                    body.len()
                                )
                                .as_bytes(),
                            )
                            .and_then(|()| stream.write_all(&body)),
                        None => stream.write_all(
                            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        ),
                    };
                }
            });
            TestServer {
                base_url,
                files,
                hits,
            }
        }

        pub fn hits(&self, path: &str) -> usize {
            self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
        }

        pub fn total_hits(&self) -> usize {
            self.hits.lock().unwrap().values().sum()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_server::TestServer;
    use super::*;
    use std::collections::HashMap;

    fn digest_of(body: &[u8]) -> FileDigest {
        FileDigest {
            size: body.len() as u64,
            sha256: sha256_hex(body),
        }
    }

    #[test]
    fn verified_download_lands_under_its_name() {
        let body = vec![7u8; 300_000];
        let server = TestServer::start(HashMap::from([("/f".to_string(), body.clone())]));
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.deb");
        Http::new()
            .download_verified(
                &format!("{}/f", server.base_url),
                &digest_of(&body),
                &dest,
                "f",
                &NoProgress,
            )
            .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), body);
        assert!(file_matches(&dest, &digest_of(&body)).unwrap());
    }

    #[test]
    fn wrong_checksum_or_size_leaves_nothing() {
        let body = b"served bytes".to_vec();
        let server = TestServer::start(HashMap::from([("/f".to_string(), body.clone())]));
        let url = format!("{}/f", server.base_url);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.deb");
        let http = Http::new();

        let mut wrong_sha = digest_of(&body);
        wrong_sha.sha256 = sha256_hex(b"other bytes");
        let err = http
            .download_verified(&url, &wrong_sha, &dest, "f", &NoProgress)
            .unwrap_err();
        assert!(matches!(err, FetchError::Checksum { .. }), "{err}");

        let mut wrong_size = digest_of(&body);
        wrong_size.size -= 1;
        let err = http
            .download_verified(&url, &wrong_size, &dest, "f", &NoProgress)
            .unwrap_err();
        assert!(matches!(err, FetchError::Size { .. }), "{err}");

        let err = http.get_verified(&url, &wrong_sha).unwrap_err();
        assert!(matches!(err, FetchError::Checksum { .. }), "{err}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no file left behind"
        );
    }

    #[test]
    fn http_errors_carry_the_status() {
        let server = TestServer::start(HashMap::new());
        let err = Http::new()
            .get(&format!("{}/missing", server.base_url), 10)
            .unwrap_err();
        assert_eq!(err.status(), Some(404), "{err}");
    }

    #[test]
    fn file_matches_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, b"abc").unwrap();
        let good = digest_of(b"abc");
        assert!(file_matches(&path, &good).unwrap());
        std::fs::write(&path, b"abd").unwrap();
        assert!(!file_matches(&path, &good).unwrap());
        std::fs::write(&path, b"ab").unwrap();
        assert!(!file_matches(&path, &good).unwrap());
    }
}
