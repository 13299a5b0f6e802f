//! examples/webhook_dispatcher.rs against a local std HTTP server on a free
//! loopback port: the server fails the first K requests (503), then accepts;
//! every request carries a valid HMAC-SHA256 signature, failed deliveries
//! are retried with backoff, and an endpoint that never recovers gets the
//! event dead-lettered after N attempts.

#[path = "../examples/webhook_dispatcher.rs"]
mod dispatcher;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dispatcher::{DispatcherConfig, EVENT_TYPE, SIGNATURE_HEADER, signature};
use eventfabric::{Backoff, Draft, Fabric, FabricConfig, TopicConfig};

const TOPIC: &str = "workflow.events.v1";
const SECRET: &[u8] = b"test-secret";

/// One request the endpoint received.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    at: Instant,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An endpoint answering 503 to its first `fail_first` requests, then 200;
/// it records every request. The thread ends with the test process.
fn endpoint(fail_first: usize) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head_len, length) = loop {
                let n = stream.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break (0, 0);
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (i + 4, length);
                }
            };
            if head_len == 0 {
                continue;
            }
            while buf.len() < head_len + length {
                let n = stream.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let head = String::from_utf8_lossy(&buf[..head_len]).to_string();
            let headers = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                .collect();
            let mut log = seen.lock().unwrap();
            log.push(Received {
                headers,
                body: buf[head_len..].to_vec(),
                at: Instant::now(),
            });
            let status = if log.len() <= fail_first {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            drop(log);
            let _ = stream.write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    (url, log)
}

/// A data directory with the seed `workflow.instance.completed` event and
/// one event of another type.
fn fixture() -> (tempfile::TempDir, Fabric, uuid::Uuid) {
    let dir = tempfile::tempdir().unwrap();
    let fabric = Fabric::open(dir.path(), FabricConfig::default()).unwrap();
    fabric
        .create_topic(TOPIC, TopicConfig::with_partitions(1))
        .unwrap();
    let seed = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/seed-events/workflow.instance.completed.json"
    ))
    .unwrap();
    let mut producer = fabric.producer(TOPIC, "test").unwrap();
    let (event, _) = producer.send(Draft::from_json(&seed).unwrap()).unwrap();
    producer
        .send(Draft::new(
            "workflow.instance.started",
            Some("tenant-789"),
            serde_json::json!({"workflow_id": "w"}),
        ))
        .unwrap();
    drop(producer);
    (dir, fabric, event.event_id)
}

fn config(url: String, max_attempts: u32) -> DispatcherConfig {
    DispatcherConfig {
        queue: "webhooks".into(),
        topic: TOPIC.into(),
        url,
        secret: SECRET.to_vec(),
        max_attempts,
        backoff: Backoff::List(vec![Duration::from_millis(100), Duration::from_millis(200)]),
        timeout: Duration::from_secs(5),
    }
}

fn assert_signed(r: &Received) {
    let header = r.header(SIGNATURE_HEADER).expect("a signature header");
    let t: u64 = header
        .strip_prefix("t=")
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .expect("t=<unix seconds>");
    // Recomputed independently of the example's `signature`: HMAC-SHA256
    // over "<t>.<body>" with the secret.
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&r.body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(header, format!("t={t},v1={want}"));
    assert_eq!(header, signature(SECRET, t, &r.body));
}

#[test]
fn failed_deliveries_are_retried_with_backoff_and_signed() {
    let (_dir, fabric, event_id) = fixture();
    let (url, log) = endpoint(2);
    let report =
        dispatcher::run_until_idle(&fabric, &config(url, 5), Duration::from_millis(300)).unwrap();
    assert_eq!(
        (
            report.delivered,
            report.retried,
            report.dead_lettered,
            report.skipped
        ),
        (1, 2, 0, 1),
        "{report:?}"
    );
    let got = log.lock().unwrap().clone();
    assert_eq!(got.len(), 3, "two failures then a success");
    for (i, r) in got.iter().enumerate() {
        assert_signed(r);
        assert_eq!(
            r.header("X-Eventfabric-Attempt"),
            Some(&*(i + 1).to_string())
        );
        assert_eq!(
            r.header("X-Eventfabric-Event-Id"),
            Some(&*event_id.hyphenated().to_string())
        );
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["event_type"], EVENT_TYPE);
        assert_eq!(body["payload"]["workflow_id"], "workflow-12345");
    }
    // Backoff: the waits follow the list (100 ms, then 200 ms), never shorter.
    let waits: Vec<Duration> = got.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(waits[0] >= Duration::from_millis(100), "{waits:?}");
    assert!(waits[1] >= Duration::from_millis(200), "{waits:?}");
    assert_eq!(
        fabric
            .dead_letters(TOPIC)
            .unwrap()
            .list(&Default::default())
            .unwrap()
            .len(),
        0
    );
    fabric.close().unwrap();
}

#[test]
fn an_endpoint_that_never_recovers_gets_the_event_dead_lettered_after_n_attempts() {
    let (_dir, fabric, event_id) = fixture();
    let (url, log) = endpoint(usize::MAX);
    let report =
        dispatcher::run_until_idle(&fabric, &config(url, 3), Duration::from_millis(300)).unwrap();
    assert_eq!(
        (report.delivered, report.retried, report.dead_lettered),
        (0, 2, 1),
        "{report:?}"
    );
    assert_eq!(log.lock().unwrap().len(), 3, "exactly N attempts");
    let letters = fabric
        .dead_letters(TOPIC)
        .unwrap()
        .list(&Default::default())
        .unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].letter.reason.as_str(), "max_attempts_exceeded");
    assert_eq!(letters[0].letter.attempts, 3);
    assert!(
        letters[0].letter.error.contains("HTTP 503"),
        "{}",
        letters[0].letter.error
    );
    assert_eq!(letters[0].event_id(), Some(event_id));
    fabric.close().unwrap();
}
