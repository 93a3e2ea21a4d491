//! HTTP downloads checked against a size and SHA256 taken from a signed index.
//!
//! Nothing is trusted before its digest matches: small documents are checked in memory,
//! files are streamed into a temporary file beside their destination and renamed into
//! place only after the digest matches, so a cache never holds a partial download under
//! its final name.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use backon::{BlockingRetryable, ExponentialBuilder};
use sha2::{Digest, Sha256};

/// Size and SHA256 (lowercase hex) of a file as an index lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileDigest {
    pub size: u64,
    pub sha256: String,
}

/// Receives download progress, e.g. to drive a progress bar, and the repairs of the cache.
pub trait Progress {
    /// A download of `total_bytes` named `label` starts.
    fn begin(&self, label: &str, total_bytes: u64);
    /// `bytes` more arrived.
    fn advance(&self, bytes: u64);
    /// The download ended (successfully or not).
    fn end(&self);
    /// The cached tree of kernel `kernel` is damaged (`reason`) and is rebuilt.
    fn rebuilding(&self, kernel: &str, reason: &str);
}

/// Ignores progress.
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn end(&self) {}
    fn rebuilding(&self, _: &str, _: &str) {}
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "{}GET {url} failed (check that the mirror is reachable; proxy variables are honoured)",
        after(*attempts)
    )]
    Request {
        url: String,
        attempts: u32,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("{}GET {url}: the server answered HTTP {status}", after(*attempts))]
    Status {
        url: String,
        status: u16,
        attempts: u32,
    },
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
    #[error("{}cannot read the body of {url}", after(*attempts))]
    Read {
        url: String,
        attempts: u32,
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

/// "after 4 attempts: " before an error that outlasted the retries.
fn after(attempts: u32) -> String {
    if attempts > 1 {
        format!("after {attempts} attempts: ")
    } else {
        String::new()
    }
}

impl FetchError {
    /// The HTTP status, when the server answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether another attempt may succeed: the connection failed, broke or timed out, or
    /// the server was overloaded (5xx, 429). A 404 or a wrong digest stays what it is.
    fn is_transient(&self) -> bool {
        match self {
            FetchError::Request { source, .. } => is_transient_http(source),
            FetchError::Status { status, .. } => *status == 429 || (500..600).contains(status),
            FetchError::Read { source, .. } => is_transient_io(source),
            FetchError::Size { .. } | FetchError::Checksum { .. } | FetchError::Write { .. } => {
                false
            }
        }
    }

    fn after_attempts(mut self, count: u32) -> FetchError {
        if let FetchError::Request { attempts, .. }
        | FetchError::Status { attempts, .. }
        | FetchError::Read { attempts, .. } = &mut self
        {
            *attempts = count;
        }
        self
    }
}

fn is_transient_http(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Io(e) => is_transient_io(e),
        ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed => true,
        _ => false,
    }
}

fn is_transient_io(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    // ureq hands its own errors (a timeout while reading a body) over wrapped in io::Error.
    if let Some(http) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
    {
        return is_transient_http(http);
    }
    matches!(
        error.kind(),
        ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::TimedOut
            | ErrorKind::UnexpectedEof
    )
}

/// Lowercase hex SHA256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub(super) fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Size and SHA256 of the file at `path`.
pub fn file_digest(path: &Path) -> std::io::Result<FileDigest> {
    let mut file = std::fs::File::open(path)?;
    let (size, sha256) =
        stream(&mut file, &mut std::io::sink(), &NoProgress).map_err(|e| match e {
            StreamError::Read(e) | StreamError::Write(e) => e,
        })?;
    Ok(FileDigest { size, sha256 })
}

/// Whether the file at `path` has exactly this size and SHA256.
pub fn file_matches(path: &Path, expected: &FileDigest) -> std::io::Result<bool> {
    // A file of another size need not be read.
    if std::fs::metadata(path)?.len() != expected.size {
        return Ok(false);
    }
    Ok(file_digest(path)? == *expected)
}

/// A blocking HTTP client with a timeout on every phase of every request, which tries a
/// request again when it failed for a reason that may pass (a refused, broken or timed-out
/// connection, HTTP 5xx or 429).
pub struct Http {
    agent: ureq::Agent,
    /// The wait before the first retry; it doubles for each further one.
    first_retry_delay: Duration,
}

/// Connection set-up and the wait for response headers.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// No single read may stall longer than this; a slow but moving download is not cut.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
const CHUNK: usize = 256 * 1024;
/// Retries after 1 s, 2 s and 4 s: a mirror that is still failing after 7 s of waiting is
/// reported rather than waited for.
const RETRIES: usize = 3;
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);

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
        Http {
            agent,
            first_retry_delay: FIRST_RETRY_DELAY,
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or has failed transiently
    /// 1 + [`RETRIES`] times; the error then says how many attempts were made.
    fn retrying<T>(
        &self,
        mut attempt: impl FnMut() -> Result<T, FetchError>,
    ) -> Result<T, FetchError> {
        let mut attempts = 0;
        let backoff = ExponentialBuilder::new()
            .with_min_delay(self.first_retry_delay)
            .with_factor(2.0)
            .with_max_times(RETRIES);
        let result = (|| {
            attempts += 1;
            attempt()
        })
        .retry(backoff)
        .when(FetchError::is_transient)
        .call();
        result.map_err(|e| e.after_attempts(attempts))
    }

    fn open(&self, url: &str) -> Result<ureq::Body, FetchError> {
        match self.agent.get(url).call() {
            Ok(response) => Ok(response.into_body()),
            Err(ureq::Error::StatusCode(status)) => Err(FetchError::Status {
                url: url.to_string(),
                status,
                attempts: 1,
            }),
            Err(source) => Err(FetchError::Request {
                url: url.to_string(),
                attempts: 1,
                source: Box::new(source),
            }),
        }
    }

    /// The whole body of a small document, refusing more than `limit` bytes.
    pub fn get(&self, url: &str, limit: u64) -> Result<Vec<u8>, FetchError> {
        self.retrying(|| self.get_once(url, limit))
    }

    fn get_once(&self, url: &str, limit: u64) -> Result<Vec<u8>, FetchError> {
        let mut body = Vec::new();
        self.open(url)?
            .into_reader()
            .take(limit + 1)
            .read_to_end(&mut body)
            .map_err(|source| FetchError::Read {
                url: url.to_string(),
                attempts: 1,
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
        self.retrying(|| self.download_once(url, expected, dest, label, progress))
    }

    fn download_once(
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
                attempts: 1,
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

    use std::collections::{HashMap, VecDeque};
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};

    /// How the server fails a request instead of answering it.
    #[derive(Debug, Clone, Copy)]
    pub enum Failure {
        /// An error status with an empty body.
        Status(u16),
        /// The connection is closed without an answer.
        Hangup,
        /// The file's headers and half of its body, then the connection is closed.
        HalfBody,
    }

    /// Serves `files` (path → body) on 127.0.0.1 until dropped; counts requests per path.
    pub struct TestServer {
        pub base_url: String,
        pub files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
        pub hits: Arc<Mutex<HashMap<String, usize>>>,
        failures: Arc<Mutex<VecDeque<Failure>>>,
    }

    impl TestServer {
        pub fn start(files: HashMap<String, Vec<u8>>) -> TestServer {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
            let base_url = format!("http://{}", listener.local_addr().expect("local addr"));
            let files = Arc::new(Mutex::new(files));
            let hits = Arc::new(Mutex::new(HashMap::new()));
            let failures = Arc::new(Mutex::new(VecDeque::new()));
            let (served, counted, failing) = (files.clone(), hits.clone(), failures.clone());
            // The thread ends with the test process; each test binds its own port.
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let Some(path) = read_request(&stream) else {
                        continue;
                    };
                    *counted.lock().unwrap().entry(path.clone()).or_default() += 1;
                    let body = served.lock().unwrap().get(&path).cloned();
                    let failure = failing.lock().unwrap().pop_front();
                    let _ = answer(stream, body, failure);
                }
            });
            TestServer {
                base_url,
                files,
                hits,
                failures,
            }
        }

        /// Fails the next `count` requests, whatever their path, in this way.
        pub fn fail_next(&self, count: usize, failure: Failure) {
            self.failures
                .lock()
                .unwrap()
                .extend(std::iter::repeat_n(failure, count));
        }

        pub fn hits(&self, path: &str) -> usize {
            self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
        }

        pub fn total_hits(&self) -> usize {
            self.hits.lock().unwrap().values().sum()
        }
    }

    /// The path of the request on `stream`, its headers drained.
    fn read_request(stream: &TcpStream) -> Option<String> {
        let mut reader = BufReader::new(stream.try_clone().ok()?);
        let mut request_line = String::new();
        reader.read_line(&mut request_line).ok()?;
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        Some(request_line.split_whitespace().nth(1)?.to_string())
    }

    fn answer(
        mut stream: TcpStream,
        body: Option<Vec<u8>>,
        failure: Option<Failure>,
    ) -> std::io::Result<()> {
        let headers = |status: &str, length: usize| {
            format!("HTTP/1.1 {status}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n")
        };
        match (failure, body) {
            (Some(Failure::Hangup), _) => Ok(()),
            (Some(Failure::Status(status)), _) => {
                stream.write_all(headers(&format!("{status} Failing"), 0).as_bytes())
            }
            (Some(Failure::HalfBody), Some(body)) => {
                stream.write_all(headers("200 OK", body.len()).as_bytes())?;
                stream.write_all(&body[..body.len() / 2])
            }
            (_, Some(body)) => {
                stream.write_all(headers("200 OK", body.len()).as_bytes())?;
                stream.write_all(&body)
            }
            (_, None) => stream.write_all(headers("404 Not Found", 0).as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_server::{Failure, TestServer};
    use super::*;
    use std::collections::HashMap;

    /// A client that retries after milliseconds instead of seconds.
    fn impatient() -> Http {
        Http {
            first_retry_delay: Duration::from_millis(10),
            ..Http::new()
        }
    }

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
        assert_eq!(server.hits("/f"), 3, "a wrong file is not fetched again");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no file left behind"
        );
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

    #[test]
    fn transient_failures_are_retried() {
        let body = b"index".to_vec();
        let server = TestServer::start(HashMap::from([("/f".to_string(), body.clone())]));
        server.fail_next(1, Failure::Status(503));
        server.fail_next(1, Failure::Hangup);
        server.fail_next(1, Failure::Status(429));
        let url = format!("{}/f", server.base_url);
        assert_eq!(impatient().get(&url, 100).unwrap(), body);
        assert_eq!(server.hits("/f"), 4, "three failures, then the answer");

        // A body cut short is fetched again too, and only the whole file lands.
        let body = vec![9u8; 100_000];
        let server = TestServer::start(HashMap::from([("/f.deb".to_string(), body.clone())]));
        server.fail_next(2, Failure::HalfBody);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.deb");
        let digest = digest_of(&body);
        impatient()
            .download_verified(
                &format!("{}/f.deb", server.base_url),
                &digest,
                &dest,
                "f",
                &NoProgress,
            )
            .unwrap();
        assert_eq!(server.hits("/f.deb"), 3);
        assert!(file_matches(&dest, &digest).unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failure_that_persists_is_reported_with_the_attempt_count() {
        let server = TestServer::start(HashMap::from([("/f".to_string(), b"x".to_vec())]));
        server.fail_next(10, Failure::Status(502));
        let url = format!("{}/f", server.base_url);
        let err = impatient().get(&url, 100).unwrap_err();
        assert_eq!(server.hits("/f"), 4, "one attempt and three retries");
        assert_eq!(
            err.to_string(),
            format!("after 4 attempts: GET {url}: the server answered HTTP 502")
        );
        assert_eq!(err.status(), Some(502));

        // Nothing listens on a port just released: connection refused, every time.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/f");
        let err = impatient().get(&url, 100).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("after 4 attempts: GET {url} failed (check")),
            "{err}"
        );
    }

    #[test]
    fn a_missing_file_is_not_retried() {
        let server = TestServer::start(HashMap::new());
        let url = format!("{}/missing", server.base_url);
        let err = impatient().get(&url, 10).unwrap_err();
        assert_eq!(server.hits("/missing"), 1);
        assert_eq!(err.status(), Some(404), "{err}");
        assert_eq!(
            err.to_string(),
            format!("GET {url}: the server answered HTTP 404")
        );
    }
}
