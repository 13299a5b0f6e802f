//! `fabric ui` end to end: the console served over a fixture data directory,
//! its JSON API answered over plain HTTP, its page rendered by a real
//! headless Chromium (`--dump-dom` after the page's script ran), and the
//! replay action refused without `--allow-replay` and run with it.
//!
//! Chromium must be on PATH (`chromium` or `chromium-browser`; .ci/run
//! installs Debian's): the browser test fails loudly when it is missing.
//! `UI_SCREENSHOT=path.png` also saves a 1280×900 screenshot of the page
//! (how docs/img/ui.png is made).

mod console_fixture;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use console_fixture::{BILLING, BILLING_EVENTS, DLQ_ERROR, GROUP, GROUP_LAG, ORDERS, QUEUE};
use serde_json::Value;

/// A running `fabric ui`, killed when dropped.
struct Console {
    child: Child,
    addr: String,
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `fabric ui` on a free loopback port (port 0: the OS picks) and
/// returns once it printed its URL.
fn start_console(data: &Path, extra: &[&str]) -> Console {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fabric"))
        .arg("--data")
        .arg(data)
        .args(["ui", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start fabric ui");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut console = Console {
        child,
        addr: String::new(),
    };
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("fabric ui printed its URL within 20 s");
        if let Some(rest) = line.split("http://").nth(1) {
            console.addr = rest.trim_end_matches('/').to_string();
            break;
        }
    }
    console
}

/// One raw HTTP exchange; returns (status, body).
fn exchange(addr: &str, raw: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(raw).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, body.to_string())
}

fn request(addr: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, text) = exchange(addr, raw.as_bytes());
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"));
    (status, json)
}

/// The Chromium binary on PATH; panics (never skips) when there is none.
fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        }) {
            return found;
        }
    }
    panic!(
        "Chromium is missing: neither `chromium` nor `chromium-browser` is on PATH. \
         Install it (Debian: apt-get install -y chromium; .ci/run does) — this test never skips"
    );
}

/// Chromium headless with a throw-away profile.
fn headless(profile: &Path) -> Command {
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        "--virtual-time-budget=10000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .stderr(Stdio::null());
    cmd
}

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    console_fixture::build(dir.path());
    dir
}

#[test]
fn the_page_renders_topics_lag_and_the_dead_letter_in_a_real_browser() {
    let browser = chromium();
    let data = fixture();
    let console = start_console(data.path(), &[]);
    let profile = tempfile::tempdir().unwrap();
    let out = headless(profile.path())
        .arg("--dump-dom")
        .arg(format!("http://{}/", console.addr))
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", browser.display()));
    assert!(out.status.success(), "chromium failed: {:?}", out.status);
    let dom = String::from_utf8_lossy(&out.stdout);
    // The script ran and filled every table (the loading rows are gone).
    assert!(!dom.contains("loading…"), "page not rendered:\n{dom}");
    assert!(
        dom.contains("<div id=\"error\" class=\"error\" hidden=\"\">"),
        "the page shows an error:\n{dom}"
    );
    for topic in [BILLING, ORDERS] {
        assert!(
            dom.contains(&format!("<strong>{topic}</strong>")),
            "topic {topic} not rendered:\n{dom}"
        );
    }
    assert!(dom.contains(&format!("<strong>{GROUP}</strong>")), "{dom}");
    assert!(
        dom.contains(&format!("lag {GROUP_LAG}</td>")),
        "group lag {GROUP_LAG} not rendered:\n{dom}"
    );
    assert!(dom.contains(&format!("<td>{QUEUE}</td>")), "{dom}");
    assert!(
        dom.contains("<span class=\"badge reason dlq-reason\">schema_violation</span>"),
        "the dead letter's reason is not rendered:\n{dom}"
    );
    assert!(dom.contains(DLQ_ERROR), "{dom}");
    assert!(dom.contains("✓ verified"), "hash mark missing:\n{dom}");
    assert!(dom.contains("1 dead letters match"), "{dom}");
    // The replay button is disabled without --allow-replay.
    assert!(
        dom.contains("id=\"dlq-replay\" class=\"danger\" disabled=\"\""),
        "replay button not disabled:\n{dom}"
    );
    if let Some(png) = std::env::var_os("UI_SCREENSHOT") {
        let shot = tempfile::tempdir().unwrap();
        let status = headless(shot.path())
            .arg(format!("--screenshot={}", PathBuf::from(png).display()))
            .arg("--window-size=1280,900")
            .arg(format!("http://{}/", console.addr))
            .status()
            .unwrap();
        assert!(status.success());
    }
}

#[test]
fn the_api_serves_topics_groups_queues_and_dead_letters() {
    let data = fixture();
    let console = start_console(data.path(), &[]);
    let addr = &console.addr;
    let (status, topics) = request(addr, "GET", "/api/topics", "");
    assert_eq!(status, 200, "{topics}");
    let billing = topics["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == BILLING)
        .unwrap();
    assert_eq!(billing["records"], BILLING_EVENTS);
    assert_eq!(billing["dlq_records"], 1);
    assert_eq!(billing["partitions"].as_array().unwrap().len(), 2);
    let (status, groups) = request(addr, "GET", "/api/groups", "");
    assert_eq!(status, 200);
    let group = &groups["groups"][0];
    assert_eq!(
        (group["group"].as_str(), group["lag"].as_u64()),
        (Some(GROUP), Some(GROUP_LAG))
    );
    let (_, queues) = request(addr, "GET", "/api/queues", "");
    assert_eq!(queues["queues"][0]["name"], QUEUE);
    let (status, dlq) = request(addr, "GET", &format!("/api/dlq/{BILLING}"), "");
    assert_eq!(status, 200, "{dlq}");
    assert_eq!(dlq["matched"], 1);
    let entry = &dlq["entries"][0];
    assert_eq!(entry["reason"], "schema_violation");
    assert_eq!(entry["error"], DLQ_ERROR);
    assert_eq!(entry["hash_status"], "verified");
    assert_eq!(entry["envelope"]["payload"]["amount"], -5);
    // Filters: another reason, another event type, a text that is absent.
    for query in [
        "reason=handler_error",
        "type=orders.order.placed",
        "q=no%20such%20text",
    ] {
        let (status, none) = request(addr, "GET", &format!("/api/dlq/{BILLING}?{query}"), "");
        assert_eq!(
            (status, &none["matched"]),
            (200, &Value::from(0)),
            "{query}"
        );
    }
    let (_, found) = request(
        addr,
        "GET",
        &format!("/api/dlq/{BILLING}?q=POSITIVE&type=billing.invoice.issued"),
        "",
    );
    assert_eq!(found["matched"], 1);
}

#[test]
fn bad_requests_get_json_errors_and_the_console_keeps_serving() {
    let data = fixture();
    let console = start_console(data.path(), &[]);
    let addr = &console.addr;
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"nonsense\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n".to_vec(), 505),
        (b"GET /api/topics HTTP/1.1\r\nHost: evil.example:80\r\n\r\n".to_vec(), 403),
        (format!("GET /%zz HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes(), 400),
        (format!("GET /api/nope HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes(), 404),
        (format!("GET /api/dlq/no.such.topic HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes(), 404),
        (format!("GET /api/dlq/{BILLING}?reason=bogus HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes(), 400),
        (format!("GET /api/dlq/{BILLING}?limit=0 HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes(), 400),
        (format!("DELETE /api/topics HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes(), 405),
        (format!("POST /api/dlq/{BILLING}/replay HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 999999\r\n\r\n").into_bytes(), 413),
        (format!("GET / HTTP/1.1\r\nHost: {addr}\r\nX: {}\r\n\r\n", "a".repeat(20_000)).into_bytes(), 431),
    ];
    for (raw, want) in cases {
        let (status, body) = exchange(addr, &raw);
        let shown = String::from_utf8_lossy(&raw[..raw.len().min(60)]).to_string();
        assert_eq!(status, want, "{shown:?} -> {body}");
        let json: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{shown:?}: {body:?} not JSON: {e}"));
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{json}"
        );
    }
    let (status, _) = request(addr, "GET", "/api/topics", "");
    assert_eq!(status, 200, "the console still serves after bad requests");
}

#[test]
fn replay_is_refused_without_allow_replay_and_runs_with_it() {
    let data = fixture();
    let path = format!("/api/dlq/{BILLING}/replay");
    {
        let console = start_console(data.path(), &[]);
        let (status, body) = request(&console.addr, "POST", &path, "{}");
        assert_eq!(status, 403, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("--allow-replay"),
            "{body}"
        );
        let (_, topics) = request(&console.addr, "GET", "/api/topics", "");
        let billing = topics["topics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == BILLING)
            .unwrap()
            .clone();
        assert_eq!(billing["records"], BILLING_EVENTS, "nothing was published");
    }
    let console = start_console(data.path(), &["--allow-replay", "--replay-rate", "50/s"]);
    let addr = &console.addr;
    let (status, body) = request(addr, "POST", &path, "{\"reason\": \"bogus\"}");
    assert_eq!(status, 400, "{body}");
    let (status, body) = request(addr, "POST", &path, "{\"unknown\": 1}");
    assert_eq!(status, 400, "{body}");
    // A page of another site cannot replay (its Origin is not the console).
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://evil.example\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(exchange(addr, raw.as_bytes()).0, 403);
    let (status, body) = request(addr, "POST", &path, "{\"reason\": \"schema_violation\"}");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["replayed"].as_array().unwrap().len(), 1, "{body}");
    let (_, topics) = request(addr, "GET", "/api/topics", "");
    let billing = topics["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == BILLING)
        .unwrap()
        .clone();
    assert_eq!(
        billing["records"],
        BILLING_EVENTS + 1,
        "the letter was published back"
    );
    // At most once: a second replay publishes nothing.
    let (status, again) = request(addr, "POST", &path, "");
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["replayed"].as_array().unwrap().len(), 0, "{again}");
    assert_eq!(again["already_replayed"], 1, "{again}");
}
