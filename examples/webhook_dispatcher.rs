//! A webhook dispatcher on eventfabric: a competing-consumer group (a
//! [`Queue`]) on a topic POSTs every `workflow.instance.completed` event to
//! an HTTP endpoint with an HMAC-SHA256 signature header, retries failed
//! deliveries with backoff ([`Backoff`], persisted by the queue, so a
//! restart keeps the schedule) and dead-letters an event after N attempts
//! (`max_attempts_exceeded`) or at once on a permanent refusal (a 4xx other
//! than 408/429: `handler_error`). docs/RUNBOOK.md, "Webhook delivery
//! retries", operates it.
//!
//! ```sh
//! cargo run --release --example webhook_dispatcher -- --data ./data \
//!   --topic workflow.events.v1 --url http://127.0.0.1:8080/hooks \
//!   --secret "$WEBHOOK_SECRET" --max-attempts 5 --idle-exit-ms 2000
//! ```
//!
//! This example owns the delivery loop, the signature and a minimal
//! plain-HTTP/1.1 client (std only; a production dispatcher reaching HTTPS
//! endpoints would use an HTTP client crate). It never acks an event whose
//! delivery was not answered 2xx, and never logs payloads.
//!
//! The signature: header `X-Eventfabric-Signature: t=<unix seconds>,v1=<hex>`
//! where `<hex>` is HMAC-SHA256 over `"<t>.<body>"` with the shared secret
//! (the timestamp lets the receiver refuse old replays); headers
//! `X-Eventfabric-Event-Id` and `X-Eventfabric-Attempt` name the delivery.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use eventfabric::{
    Backoff, DlqReason, Fabric, FabricConfig, Failure, NackOutcome, Queue, QueueConfig, RetryPolicy,
};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The event type this dispatcher delivers; others are acked and skipped.
pub const EVENT_TYPE: &str = "workflow.instance.completed";
/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "X-Eventfabric-Signature";

/// Where and how to deliver.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// The queue (consumer group) name; its cursor and retry state persist.
    pub queue: String,
    /// The topic read.
    pub topic: String,
    /// `http://HOST:PORT/PATH` of the endpoint.
    pub url: String,
    /// The shared HMAC secret.
    pub secret: Vec<u8>,
    /// Deliveries per event before it is dead-lettered.
    pub max_attempts: u32,
    /// Waits between deliveries.
    pub backoff: Backoff,
    /// Longest wait for the endpoint's answer.
    pub timeout: Duration,
}

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DispatchReport {
    /// Events delivered (answered 2xx).
    pub delivered: u64,
    /// Failed deliveries scheduled for a retry.
    pub retried: u64,
    /// Events dead-lettered.
    pub dead_lettered: u64,
    /// Events of other types, acked without delivery.
    pub skipped: u64,
}

/// `t=<unix>,v1=<hex HMAC-SHA256(secret, "<unix>.<body>")>`.
pub fn signature(secret: &[u8], unix_seconds: u64, body: &[u8]) -> String {
    // HMAC accepts a key of any length: `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={unix_seconds},v1={hex}")
}

/// The outcome of one POST.
enum Delivery {
    /// Answered 2xx.
    Ok,
    /// Worth retrying: 5xx, 408, 429, or no answer (the text says which).
    Transient(String),
    /// Refused for good: another 4xx (or 3xx: this client follows no redirects).
    Permanent(String),
}

/// Opens the queue and delivers until nothing is due for `idle` (a due
/// retry or a new event resets the wait).
pub fn run_until_idle(
    fabric: &Fabric,
    config: &DispatcherConfig,
    idle: Duration,
) -> Result<DispatchReport, Box<dyn std::error::Error>> {
    let mut queue_config = QueueConfig::default();
    queue_config.retry = RetryPolicy {
        max_attempts: config.max_attempts,
        backoff: config.backoff.clone(),
    };
    let queue = fabric.queue(&config.queue, &config.topic, queue_config)?;
    let mut report = DispatchReport::default();
    let mut last_work = Instant::now();
    loop {
        let batch = queue.fetch(16, Duration::from_millis(50))?;
        if batch.is_empty() {
            let stats = queue.stats();
            // Waiting retries are work still to come: keep going for them.
            if stats.waiting == 0 && stats.in_flight == 0 && last_work.elapsed() >= idle {
                break;
            }
            continue;
        }
        last_work = Instant::now();
        for message in &batch {
            deliver_one(&queue, config, message, &mut report)?;
        }
    }
    queue.flush()?;
    Ok(report)
}

fn deliver_one(
    queue: &Queue,
    config: &DispatcherConfig,
    message: &eventfabric::QueueMessage,
    report: &mut DispatchReport,
) -> Result<(), Box<dyn std::error::Error>> {
    let envelope = match message.envelope().and_then(|e| e.to_envelope()) {
        Ok(e) => e,
        Err(e) => {
            queue.nack(
                message,
                Failure::fatal(DlqReason::DeserializationFailure, e.to_string()),
            )?;
            report.dead_lettered += 1;
            return Ok(());
        }
    };
    if envelope.event_type != EVENT_TYPE {
        queue.ack(message)?;
        report.skipped += 1;
        return Ok(());
    }
    let body = envelope.to_json_value().to_string();
    let now = jiff::Timestamp::now().as_second().max(0).unsigned_abs();
    let headers = [
        (
            SIGNATURE_HEADER,
            signature(&config.secret, now, body.as_bytes()),
        ),
        (
            "X-Eventfabric-Event-Id",
            envelope.event_id.hyphenated().to_string(),
        ),
        ("X-Eventfabric-Attempt", message.attempt.to_string()),
    ];
    let failure = match post(&config.url, &headers, body.as_bytes(), config.timeout) {
        Delivery::Ok => {
            queue.ack(message)?;
            report.delivered += 1;
            return Ok(());
        }
        Delivery::Transient(why) => Failure::retry(why),
        Delivery::Permanent(why) => Failure::fatal(DlqReason::HandlerError, why),
    };
    match queue.nack(message, failure)? {
        NackOutcome::Retry { .. } => report.retried += 1,
        _ => report.dead_lettered += 1,
    }
    Ok(())
}

/// POSTs `body` as JSON to `url` (`http://HOST:PORT/PATH`) and classifies
/// the answer by its status line.
fn post(url: &str, headers: &[(&str, String)], body: &[u8], timeout: Duration) -> Delivery {
    let Some(rest) = url.strip_prefix("http://") else {
        return Delivery::Permanent(format!("{url:?} is not an http:// URL"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let addr = match std::net::ToSocketAddrs::to_socket_addrs(authority)
        .ok()
        .and_then(|mut a| a.next())
    {
        Some(a) => a,
        None => return Delivery::Transient(format!("cannot resolve {authority:?}")),
    };
    let mut stream = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => s,
        Err(e) => return Delivery::Transient(format!("connect {addr}: {e}")),
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    if let Err(e) = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
    {
        return Delivery::Transient(format!("send to {addr}: {e}"));
    }
    let mut answer = Vec::new();
    let _ = stream.take(64 * 1024).read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(200..=299) => Delivery::Ok,
        Some(s @ (408 | 429 | 500..=599)) => Delivery::Transient(format!("HTTP {s} from {url}")),
        Some(s) => Delivery::Permanent(format!("HTTP {s} from {url}")),
        None => Delivery::Transient(format!("no HTTP answer from {url}")),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut data = None;
    let mut config = DispatcherConfig {
        queue: "webhook-dispatcher".into(),
        topic: String::new(),
        url: String::new(),
        secret: Vec::new(),
        max_attempts: 5,
        backoff: Backoff::Exponential {
            initial: Duration::from_millis(500),
            multiplier: 2.0,
            max: Duration::from_secs(60),
            jitter: 0.2,
        },
        timeout: Duration::from_secs(10),
    };
    let mut idle = Duration::from_secs(u64::MAX / 4);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => data = Some(value()?),
            "--topic" => config.topic = value()?,
            "--queue" => config.queue = value()?,
            "--url" => config.url = value()?,
            "--secret" => config.secret = value()?.into_bytes(),
            "--max-attempts" => config.max_attempts = value()?.parse()?,
            "--idle-exit-ms" => idle = Duration::from_millis(value()?.parse()?),
            other => return Err(format!("unknown flag {other:?}").into()),
        }
    }
    let data = data.ok_or("--data DIR is required")?;
    if config.topic.is_empty() || config.url.is_empty() || config.secret.is_empty() {
        return Err("--topic, --url and --secret are required".into());
    }
    let fabric = Fabric::open(&data, FabricConfig::default())?;
    let report = run_until_idle(&fabric, &config, idle)?;
    println!(
        "delivered {} retried {} dead-lettered {} skipped {}",
        report.delivered, report.retried, report.dead_lettered, report.skipped
    );
    fabric.close()?;
    Ok(())
}
