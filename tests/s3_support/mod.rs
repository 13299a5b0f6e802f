//! Test support for the object-store tier: a real S3-compatible server
//! (`moto_server`, from PyPI's `moto[server]`, installed by .ci/run) started
//! on 127.0.0.1 with a free port for one test and killed when dropped, and a
//! loopback TCP proxy in front of it that a test can cut (the store becoming
//! unreachable in the middle of a request) and point at a restarted server.
//!
//! It never skips: a missing `moto_server` or one that does not answer in
//! time fails the test with what to install.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventfabric::{ObjectStoreConfig, RemoteStore, S3Credentials};

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free loopback port")
        .port()
}

/// One running `moto_server` on loopback.
pub struct Moto {
    pub port: u16,
    child: Child,
    _logs: tempfile::TempDir,
}

impl Moto {
    /// Starts `moto_server -H 127.0.0.1 -p <free port>` and waits until it
    /// answers HTTP. Panics (the test fails) when it is missing or silent.
    pub fn start() -> Moto {
        let port = free_port();
        let logs = tempfile::tempdir().expect("temp dir for moto's log");
        let log = std::fs::File::create(logs.path().join("moto.log")).expect("moto log file");
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start moto_server ({e}): the object-store tests need it on PATH \
                     (`pip install 'moto[server]'`, which .ci/run does)"
                )
            });
        let mut moto = Moto {
            port,
            child,
            _logs: logs,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = moto.child.try_wait().expect("poll moto_server") {
                let log =
                    std::fs::read_to_string(moto._logs.path().join("moto.log")).unwrap_or_default();
                panic!("moto_server exited at start ({status}):\n{log}");
            }
            if http(port, "GET", "/", &[]).is_ok_and(|r| r.starts_with("HTTP/1.")) {
                return moto;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server on port {port} did not answer within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// http://127.0.0.1:<port>
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates `bucket` (moto accepts the unsigned request).
    pub fn create_bucket(&self, bucket: &str) {
        let r = http(self.port, "PUT", &format!("/{bucket}"), &[]).expect("create bucket");
        assert!(
            r.starts_with("HTTP/1.1 200") || r.starts_with("HTTP/1.0 200"),
            "{r}"
        );
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One HTTP/1.1 request with `Connection: close`; the whole response as text.
pub fn http(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Test credentials (moto accepts any).
pub fn credentials() -> S3Credentials {
    S3Credentials::new("testing-key-id", "testing-secret", None)
}

/// A store config for `bucket` on `endpoint`, failing fast (tests wait on
/// failures) and with 5 MiB parts above 6 MiB, so multipart is cheap to hit.
pub fn config(endpoint: &str, bucket: &str, prefix: &str) -> ObjectStoreConfig {
    let mut c = ObjectStoreConfig::new(bucket);
    c.endpoint = Some(endpoint.to_owned());
    c.prefix = prefix.to_owned();
    c.region = Some("us-east-1".into());
    c.multipart_threshold = 6 << 20;
    c.part_bytes = 5 << 20;
    c.request_timeout_ms = 5_000;
    c.max_retries = 1;
    c
}

/// A connected store.
pub fn store(endpoint: &str, bucket: &str, prefix: &str) -> RemoteStore {
    RemoteStore::connect(config(endpoint, bucket, prefix), credentials()).expect("connect")
}

/// A loopback TCP proxy: forwards every connection to the current
/// upstream port, counts client-to-server bytes, and can cut every
/// connection once a byte budget is spent (what a server dying in the middle
/// of an upload looks like to the client).
pub struct Proxy {
    pub port: u16,
    upstream: Arc<AtomicU16>,
    sent: Arc<AtomicU64>,
    cut_after: Arc<AtomicU64>,
    down: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Listens on a free loopback port, forwarding to `upstream`.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let upstream = Arc::new(AtomicU16::new(upstream));
        let sent = Arc::new(AtomicU64::new(0));
        let cut_after = Arc::new(AtomicU64::new(u64::MAX));
        let down = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (u, s, c, d, st, cs) = (
            upstream.clone(),
            sent.clone(),
            cut_after.clone(),
            down.clone(),
            stop.clone(),
            conns.clone(),
        );
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                let _ = client.set_nonblocking(false);
                if d.load(Ordering::SeqCst) {
                    drop(client); // refused: the store is down
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", u.load(Ordering::SeqCst))) else {
                    continue;
                };
                {
                    let mut cs = cs.lock().unwrap();
                    cs.push(client.try_clone().unwrap());
                    cs.push(server.try_clone().unwrap());
                }
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (sent, cut, down, conns) = (s.clone(), c.clone(), d.clone(), cs.clone());
                std::thread::spawn(move || {
                    pump(client, server, Some((sent, cut, down, conns)));
                });
                std::thread::spawn(move || pump(s2, c2, None));
            }
        });
        Proxy {
            port,
            upstream,
            sent,
            cut_after,
            down,
            stop,
            conns,
            thread: Some(thread),
        }
    }

    /// http://127.0.0.1:<proxy port>
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Client-to-server bytes forwarded so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Once `more` further client bytes went through, every connection is
    /// cut and new ones are refused until [`Proxy::restore`].
    pub fn cut_after(&self, more: u64) {
        self.cut_after
            .store(self.sent().saturating_add(more), Ordering::SeqCst);
    }

    /// Whether the proxy cut (or was told to refuse) connections.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// Cuts everything now and refuses new connections.
    pub fn go_down(&self) {
        cut_all(&self.down, &self.conns);
    }

    /// Forwards again, to `upstream` from now on.
    pub fn restore(&self, upstream: u16) {
        self.upstream.store(upstream, Ordering::SeqCst);
        self.cut_after.store(u64::MAX, Ordering::SeqCst);
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        cut_all(&self.down, &self.conns);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn cut_all(down: &AtomicBool, conns: &Mutex<Vec<TcpStream>>) {
    down.store(true, Ordering::SeqCst);
    for c in conns.lock().unwrap().drain(..) {
        let _ = c.shutdown(Shutdown::Both);
    }
}

type Budget = (
    Arc<AtomicU64>,
    Arc<AtomicU64>,
    Arc<AtomicBool>,
    Arc<Mutex<Vec<TcpStream>>>,
);

fn pump(mut from: TcpStream, mut to: TcpStream, budget: Option<Budget>) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((sent, cut, down, conns)) = &budget {
            let total = sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if total >= cut.load(Ordering::SeqCst) {
                cut_all(down, conns);
                break;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// `len` pseudo-random bytes from `seed` (xorshift): incompressible object
/// bodies, the same for a test and the bench.
pub fn pattern(len: usize, seed: u64) -> bytes::Bytes {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}
