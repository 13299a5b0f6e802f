//! The routes of `fabric ui`: the compiled-in page and its JSON API
//! (`/api/info`, `/api/topics`, `/api/groups`, `/api/queues`,
//! `/api/dlq/<topic>`, `POST /api/dlq/<topic>/replay`), documented in
//! docs/UI.md.
//!
//! It owns turning a parsed request into a status and a body. Every GET
//! opens the data directory read-only (beside a live writer); only the
//! replay route opens it as writer, and only when the console was started
//! with `--allow-replay`. It must never panic on input: bad requests are
//! 4xx answers with a JSON `{"error": …}` body.

use std::path::PathBuf;

use eventfabric::{DlqFilter, DlqReason, Error, Fabric, FabricConfig};
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::Request;

/// The page, its script and its style sheet, compiled into the binary.
const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The folder of queue state in a data directory (docs/FORMAT.md; the
/// library's `consume::queue::QUEUES_DIR`, which it does not export).
const QUEUES_DIR: &str = "queues";

/// The dead-letter topic of `topic` (docs/FORMAT.md: `<topic>.dlq`; the
/// library's `dlq_topic_name`, which it does not export).
fn dlq_topic_name(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// Most dead letters one `/api/dlq/<topic>` answer carries (`limit` caps at this).
pub(crate) const MAX_DLQ_ENTRIES: usize = 1000;
/// Dead letters an answer carries without `limit`.
const DEFAULT_DLQ_ENTRIES: usize = 200;

/// What every request of one console shares.
#[derive(Debug)]
pub(crate) struct Console {
    /// The data directory.
    pub(crate) data: PathBuf,
    /// Warm and cold tier locations (the global `--warm-dir`/`--cold-dir`).
    pub(crate) tiers: FabricConfig,
    /// Whether `POST /api/dlq/<topic>/replay` runs (`--allow-replay`).
    pub(crate) allow_replay: bool,
    /// The replay rate limit, letters per second.
    pub(crate) replay_rate: f64,
    /// `Host` header values a request may carry (the listen address and
    /// its `localhost` spelling): anything else is refused, so a web page
    /// on another site cannot reach the console through DNS rebinding.
    pub(crate) allowed_hosts: Vec<String>,
}

/// One answer: status, content type and body.
pub(crate) struct Response {
    /// HTTP status.
    pub(crate) status: u16,
    /// `Content-Type` value.
    pub(crate) content_type: &'static str,
    /// The body bytes.
    pub(crate) body: Vec<u8>,
}

const JSON: &str = "application/json; charset=utf-8";

fn json_response(status: u16, value: &Value) -> Response {
    Response {
        status,
        content_type: JSON,
        body: value.to_string().into_bytes(),
    }
}

/// A JSON error answer: `{"error": message, "status": status}`.
pub(crate) fn error_response(status: u16, message: &str) -> Response {
    json_response(status, &json!({ "error": message, "status": status }))
}

fn asset(content_type: &'static str, text: &'static str) -> Response {
    Response {
        status: 200,
        content_type,
        body: text.as_bytes().to_vec(),
    }
}

/// The status a library error answers with.
fn error_status(e: &Error) -> u16 {
    match e {
        Error::UnknownTopic { .. } | Error::TopicDeleted { .. } => 404,
        Error::Invalid { .. } => 400,
        Error::Locked { .. } | Error::InUse { .. } => 409,
        Error::NotADataDir { .. } => 503,
        _ => 500,
    }
}

fn from_error(e: &Error) -> Response {
    error_response(error_status(e), &e.to_string())
}

impl Console {
    /// Answers one request.
    pub(crate) fn handle(&self, request: &Request) -> Response {
        match request.header("host") {
            Some(host) if self.allowed_hosts.iter().any(|h| h == host) => {}
            other => {
                return error_response(
                    403,
                    &format!(
                        "Host header {other:?} is not this console's address ({}): refused \
                         (DNS-rebinding guard)",
                        self.allowed_hosts.join(" or ")
                    ),
                );
            }
        }
        let segments: Vec<&str> = request.segments.iter().map(String::as_str).collect();
        match (request.method.as_str(), segments.as_slice()) {
            ("GET" | "HEAD", []) => asset("text/html; charset=utf-8", INDEX_HTML),
            ("GET" | "HEAD", ["app.js"]) => asset("text/javascript; charset=utf-8", APP_JS),
            ("GET" | "HEAD", ["style.css"]) => asset("text/css; charset=utf-8", STYLE_CSS),
            ("GET", ["api", "info"]) => self.info(),
            ("GET", ["api", "topics"]) => self.topics(),
            ("GET", ["api", "groups"]) => self.groups(),
            ("GET", ["api", "queues"]) => self.queues(),
            ("GET", ["api", "dlq", topic]) => self.dlq(topic, request),
            ("POST", ["api", "dlq", topic, "replay"]) => self.replay(topic, request),
            (_, ["api", "dlq", _, "replay"]) => error_response(405, "replay takes POST"),
            ("GET" | "HEAD", _) => error_response(
                404,
                &format!("no such page or API route: /{}", segments.join("/")),
            ),
            (method, _) => error_response(
                405,
                &format!("method {method} is not served here (GET, and POST for replay)"),
            ),
        }
    }

    fn open(&self) -> Result<Fabric, Response> {
        Fabric::open_read_only_with(&self.data, &self.tiers).map_err(|e| from_error(&e))
    }

    fn info(&self) -> Response {
        json_response(
            200,
            &json!({
                "data_dir": self.data.display().to_string(),
                "allow_replay": self.allow_replay,
                "replay_rate_per_sec": self.replay_rate,
                "version": env!("CARGO_PKG_VERSION"),
            }),
        )
    }

    fn topics(&self) -> Response {
        let stats = match self
            .open()
            .and_then(|f| f.stats().map_err(|e| from_error(&e)))
        {
            Ok(s) => s,
            Err(r) => return r,
        };
        json_response(200, &json!({ "topics": stats.topics }))
    }

    fn groups(&self) -> Response {
        let stats = match self
            .open()
            .and_then(|f| f.stats().map_err(|e| from_error(&e)))
        {
            Ok(s) => s,
            Err(r) => return r,
        };
        json_response(200, &json!({ "groups": stats.groups }))
    }

    /// The queues that have persisted state (`DATA/queues/<name>/`) and the
    /// bytes of that state. Their in-flight counts live in the process that
    /// runs them: a read-only console cannot see those.
    fn queues(&self) -> Response {
        let dir = self.data.join(QUEUES_DIR);
        let mut queues = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return json_response(200, &json!({ "queues": queues }));
            }
            Err(e) => {
                return error_response(500, &format!("listing {}: {e}", dir.display()));
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let state_bytes: u64 = std::fs::read_dir(&path)
                .map(|files| {
                    files
                        .flatten()
                        .filter_map(|f| f.metadata().ok())
                        .map(|m| m.len())
                        .sum()
                })
                .unwrap_or(0);
            queues.push(json!({
                "name": entry.file_name().to_string_lossy(),
                "state_bytes": state_bytes,
            }));
        }
        queues.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        json_response(200, &json!({ "queues": queues }))
    }

    fn dlq(&self, topic: &str, request: &Request) -> Response {
        let reason = match request.param("reason").map(str::parse::<DlqReason>) {
            None => None,
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => return error_response(400, &format!("query parameter reason: {e}")),
        };
        let limit = match request.param("limit").map(str::parse::<usize>) {
            None => DEFAULT_DLQ_ENTRIES,
            Some(Ok(n)) if (1..=MAX_DLQ_ENTRIES).contains(&n) => n,
            Some(_) => {
                return error_response(
                    400,
                    &format!("query parameter limit must be 1..={MAX_DLQ_ENTRIES}"),
                );
            }
        };
        let event_type = request.param("type");
        let text = request.param("q").map(str::to_lowercase);
        let fabric = match self.open() {
            Ok(f) => f,
            Err(r) => return r,
        };
        if let Err(r) = known_topic(&fabric, topic) {
            return r;
        }
        let letters = match fabric.dead_letters(topic) {
            Ok(l) => l,
            Err(e) => return from_error(&e),
        };
        let filter = DlqFilter {
            reason,
            ..DlqFilter::default()
        };
        let iter = match letters.iter(&filter) {
            Ok(i) => i,
            Err(e) => return from_error(&e),
        };
        let mut entries = Vec::new();
        let mut matched = 0u64;
        let mut read_error = Value::Null;
        for entry in iter {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    // The letters before a damaged record are shown; the
                    // damage is named beside them.
                    read_error = Value::String(e.to_string());
                    break;
                }
            };
            if let Some(want) = event_type
                && !entry.envelope().is_ok_and(|e| e.event_type == want)
            {
                continue;
            }
            let mut value = entry.to_json();
            if let Some(needle) = &text
                && !value.to_string().to_lowercase().contains(needle.as_str())
            {
                continue;
            }
            matched += 1;
            if entries.len() < limit {
                let status = if entry.hash_matches() {
                    "verified"
                } else {
                    "mismatch"
                };
                if let Some(obj) = value.as_object_mut() {
                    obj.insert("hash_status".into(), Value::String(status.into()));
                }
                entries.push(value);
            }
        }
        json_response(
            200,
            &json!({
                "topic": topic,
                "dlq_topic": dlq_topic_name(topic),
                "matched": matched,
                "shown": entries.len(),
                "read_error": read_error,
                "entries": entries,
            }),
        )
    }

    fn replay(&self, topic: &str, request: &Request) -> Response {
        if !self.allow_replay {
            return error_response(
                403,
                "replay is disabled: restart the console with `fabric ui --allow-replay` to \
                 enable it",
            );
        }
        // A browser on another site always sends Origin: a POST must come
        // from this console's own page (CSRF guard).
        if let Some(origin) = request.header("origin") {
            let ours = self
                .allowed_hosts
                .iter()
                .any(|h| origin == format!("http://{h}"));
            if !ours {
                return error_response(
                    403,
                    &format!("Origin {origin:?} is not this console: replay refused"),
                );
            }
        }
        let body: ReplayBody = if request.body.iter().all(u8::is_ascii_whitespace) {
            ReplayBody::default()
        } else {
            match serde_json::from_slice(&request.body) {
                Ok(b) => b,
                Err(e) => {
                    return error_response(
                        400,
                        &format!(
                            "replay body is not {{\"reason\"?, \"event_id\"?}} JSON: {e} (line {}, column {})",
                            e.line(),
                            e.column()
                        ),
                    );
                }
            }
        };
        let reason = match body.reason.as_deref().map(str::parse::<DlqReason>) {
            None => None,
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => return error_response(400, &format!("body field reason: {e}")),
        };
        let event_id = match body.event_id.as_deref().map(uuid::Uuid::parse_str) {
            None => None,
            Some(Ok(id)) => Some(id),
            Some(Err(e)) => {
                return error_response(400, &format!("body field event_id is not a UUID: {e}"));
            }
        };
        match self.open().and_then(|f| known_topic(&f, topic)) {
            Ok(()) => {}
            Err(r) => return r,
        }
        let fabric = match Fabric::open(&self.data, self.tiers.clone()) {
            Ok(f) => f,
            Err(e) => return from_error(&e),
        };
        let filter = DlqFilter {
            reason,
            event_id,
            ..DlqFilter::default()
        };
        let report = fabric
            .dead_letters(topic)
            .and_then(|l| l.replay(&filter, Some(self.replay_rate)));
        let closed = fabric.close();
        let report = match (report, closed) {
            (Ok(r), Ok(())) => r,
            (Err(e), _) | (Ok(_), Err(e)) => return from_error(&e),
        };
        let replayed: Vec<Value> = report
            .replayed
            .iter()
            .map(|r| {
                json!({
                    "dlq_partition": r.dlq_partition,
                    "dlq_offset": r.dlq_offset,
                    "event_id": r.event_id.hyphenated().to_string(),
                    "partition": r.published.partition,
                    "offset": r.published.offset,
                })
            })
            .collect();
        let unreplayable: Vec<Value> = report
            .unreplayable
            .iter()
            .map(|(p, o, why)| json!({ "dlq_partition": p, "dlq_offset": o, "why": why }))
            .collect();
        json_response(
            200,
            &json!({
                "topic": topic,
                "replayed": replayed,
                "already_replayed": report.already_replayed,
                "unreplayable": unreplayable,
                "resolved_in_doubt": report.resolved_in_doubt,
            }),
        )
    }
}

/// 404 unless `topic` (or the DLQ it left behind) exists.
fn known_topic(fabric: &Fabric, topic: &str) -> Result<(), Response> {
    let names = fabric.topics();
    let dlq = dlq_topic_name(topic);
    if names.iter().any(|n| n == topic || *n == dlq) {
        Ok(())
    } else {
        Err(error_response(
            404,
            &format!(
                "topic {topic:?} does not exist in {}",
                fabric.path().display()
            ),
        ))
    }
}

/// The optional JSON body of `POST /api/dlq/<topic>/replay`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    /// Only letters of this reason.
    reason: Option<String>,
    /// Only the letter of this original event id.
    event_id: Option<String>,
}
