//! `fabric top [--interval SECS] [--once]`: a live terminal view of a data
//! directory — per topic the publish rate and DLQ growth, per consumer group
//! the lag and consume rate — computed from successive `Fabric::stats`
//! snapshots, redrawn every interval, fitting an 80×24 terminal; `q` quits.
//!
//! It owns the rate arithmetic and the frame layout (pure functions, tested
//! below) and the terminal session (raw mode and the alternate screen,
//! always restored on exit). It must never take the writer lock or change
//! a file: it opens the data directory read-only beside a live writer.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::{cursor, execute, queue, style, terminal};
use eventfabric::observe::stats::FabricStats;
use eventfabric::{Fabric, FabricConfig};

use crate::shared::{CliResult, fail};

/// Arguments of `top`.
#[derive(Args, Debug)]
pub(crate) struct TopArgs {
    /// Seconds between snapshots (rates are per second over this span).
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    interval: f64,
    /// Print one frame (two snapshots one interval apart) as plain text and
    /// exit: for scripts and terminals that are not a tty.
    #[arg(long)]
    once: bool,
}

/// One snapshot and when it was taken.
struct Sample {
    stats: FabricStats,
    at: Instant,
}

/// Runs the live view (or one frame with `--once`) over `data`.
pub(crate) fn run(data: &Path, args: TopArgs, tiers: &FabricConfig) -> CliResult {
    if !(args.interval.is_finite() && (0.05..=3600.0).contains(&args.interval)) {
        return fail(format!(
            "--interval {} is not a number of seconds in 0.05..=3600",
            args.interval
        ));
    }
    let interval = Duration::from_secs_f64(args.interval);
    let fabric = Fabric::open_read_only_with(data, tiers)?;
    let title = data.display().to_string();
    if args.once {
        let first = sample(&fabric)?;
        std::thread::sleep(interval);
        let second = sample(&fabric)?;
        for line in frame(&title, Some(&first), &second, 80, usize::MAX) {
            println!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut session = TerminalSession::start()?;
    let mut previous: Option<Sample> = None;
    let mut current = sample(&fabric)?;
    let mut error: Option<String> = None;
    let mut next_sample = Instant::now() + interval;
    loop {
        let (cols, rows) = terminal::size().unwrap_or((80, 24));
        let mut lines = frame(
            &title,
            previous.as_ref(),
            &current,
            usize::from(cols),
            usize::from(rows),
        );
        if let (Some(e), Some(last)) = (&error, lines.last_mut()) {
            *last = fit(&format!("snapshot failed: {e}"), usize::from(cols));
        }
        session.draw(&lines)?;
        let wait = next_sample.saturating_duration_since(Instant::now());
        if event::poll(wait)? {
            match event::read()? {
                Event::Key(key) if quits(&key) => break,
                _ => continue,
            }
        }
        next_sample = Instant::now() + interval;
        match sample(&fabric) {
            Ok(s) => {
                previous = Some(std::mem::replace(&mut current, s));
                error = None;
            }
            // A snapshot can fail while a writer is mid-change (a segment
            // rolled away under the reader): say so and try next tick.
            Err(e) => error = Some(e.message),
        }
    }
    session.stop()?;
    Ok(ExitCode::SUCCESS)
}

fn quits(key: &KeyEvent) -> bool {
    key.kind != KeyEventKind::Release
        && (matches_quit_code(key.code)
            || (key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL)))
}

fn matches_quit_code(code: KeyCode) -> bool {
    code == KeyCode::Char('q') || code == KeyCode::Char('Q') || code == KeyCode::Esc
}

fn sample(fabric: &Fabric) -> CliResult<Sample> {
    Ok(Sample {
        stats: fabric.stats()?,
        at: Instant::now(),
    })
}

/// Raw mode and the alternate screen while the view runs; restored by
/// [`TerminalSession::stop`] or, on an early return, by `Drop`.
struct TerminalSession {
    active: bool,
}

impl TerminalSession {
    fn start() -> CliResult<TerminalSession> {
        terminal::enable_raw_mode().map_err(|e| {
            crate::shared::Failure::from(format!(
                "fabric top needs a terminal ({e}); use --once for plain output"
            ))
        })?;
        let session = TerminalSession { active: true };
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cursor::Hide
        )?;
        Ok(session)
    }

    fn draw(&mut self, lines: &[String]) -> CliResult<()> {
        let mut out = std::io::stdout().lock();
        queue!(out, terminal::Clear(terminal::ClearType::All))?;
        for (row, line) in lines.iter().enumerate() {
            let row = u16::try_from(row).unwrap_or(u16::MAX);
            queue!(out, cursor::MoveTo(0, row), style::Print(line))?;
        }
        out.flush()?;
        Ok(())
    }

    fn stop(mut self) -> CliResult<()> {
        self.active = false;
        execute!(
            std::io::stdout(),
            cursor::Show,
            terminal::LeaveAlternateScreen
        )?;
        terminal::disable_raw_mode()?;
        Ok(())
    }
}

impl Drop for TerminalSession {
    fn drop(&mut self) {
        if self.active {
            let _ = execute!(
                std::io::stdout(),
                cursor::Show,
                terminal::LeaveAlternateScreen
            );
            let _ = terminal::disable_raw_mode();
        }
    }
}

/// `s` cut to `width` characters (an ellipsis marks the cut).
fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `s` cut or padded to exactly `width` characters.
fn cell(s: &str, width: usize) -> String {
    format!("{:<width$}", fit(s, width))
}

/// A per-second rate from two counter readings, `-` without an earlier one.
fn rate(before: Option<u64>, now: u64, seconds: f64) -> String {
    match before {
        Some(b) if seconds > 0.0 => format!("{:.1}", now.saturating_sub(b) as f64 / seconds),
        _ => "-".to_string(),
    }
}

/// Records appended to a topic ever: the sum of its partitions' next offsets.
fn appended(stats: &FabricStats, topic: &str) -> Option<u64> {
    stats
        .topics
        .iter()
        .find(|t| t.name == topic)
        .map(|t| t.partitions.iter().map(|p| p.next_offset).sum())
}

/// Records a group committed past on a topic: the sum of its committed offsets.
fn committed(stats: &FabricStats, group: &str, topic: &str) -> Option<u64> {
    stats
        .groups
        .iter()
        .find(|g| g.group == group && g.topic == topic)
        .map(|g| g.partitions.iter().filter_map(|p| p.committed).sum())
}

fn dlq_records(stats: &FabricStats, topic: &str) -> Option<u64> {
    stats
        .topics
        .iter()
        .find(|t| t.name == topic)
        .map(|t| t.dlq_records)
}

/// The lines of one frame, at most `rows` of at most `cols` characters:
/// a title, the topics table (dead-letter topics folded into their source's
/// DLQ columns) and the groups table, each cut with a "… N more" line when
/// the terminal is too small.
fn frame(
    title: &str,
    previous: Option<&Sample>,
    current: &Sample,
    cols: usize,
    rows: usize,
) -> Vec<String> {
    let seconds = previous.map_or(0.0, |p| current.at.duration_since(p.at).as_secs_f64());
    let before = previous.map(|p| &p.stats);
    let now = &current.stats;
    let clock = jiff::Timestamp::now().strftime("%H:%M:%S UTC").to_string();
    let mut topics = vec![format!(
        "{} {:>5} {:>11} {:>9} {:>8} {:>8}",
        cell("TOPIC", 34),
        "PARTS",
        "RECORDS",
        "PUB/S",
        "DLQ",
        "DLQ+/S"
    )];
    for t in now.topics.iter().filter(|t| !t.name.ends_with(".dlq")) {
        let total: u64 = t.partitions.iter().map(|p| p.next_offset).sum();
        topics.push(format!(
            "{} {:>5} {:>11} {:>9} {:>8} {:>8}",
            cell(&t.name, 34),
            t.partitions.len(),
            t.records,
            rate(before.and_then(|b| appended(b, &t.name)), total, seconds),
            t.dlq_records,
            rate(
                before.and_then(|b| dlq_records(b, &t.name)),
                t.dlq_records,
                seconds
            ),
        ));
    }
    let mut groups = vec![format!(
        "{} {} {:>11} {:>9}",
        cell("GROUP", 24),
        cell("TOPIC", 30),
        "LAG",
        "CONS/S"
    )];
    for g in &now.groups {
        let done: u64 = g.partitions.iter().filter_map(|p| p.committed).sum();
        groups.push(format!(
            "{} {} {:>11} {:>9}",
            cell(&g.group, 24),
            cell(&g.topic, 30),
            g.lag,
            rate(
                before.and_then(|b| committed(b, &g.group, &g.topic)),
                done,
                seconds
            ),
        ));
    }
    let head = vec![
        format!("fabric top  {title}"),
        format!(
            "{clock}  {} topics  {} groups  rates over {seconds:.1}s  q: quit",
            topics.len() - 1,
            groups.len() - 1
        ),
        String::new(),
    ];
    // Rows left for the two tables (one blank line between them and one
    // status line kept free at the bottom); topics get at least half when
    // both overflow, and whatever the groups leave.
    let budget = rows.saturating_sub(head.len() + 2);
    let topic_rows = topics
        .len()
        .min((budget / 2).max(budget.saturating_sub(groups.len())));
    let group_rows = budget.saturating_sub(topic_rows);
    let mut lines = head;
    lines.extend(cut(topics, topic_rows));
    lines.push(String::new());
    lines.extend(cut(groups, group_rows));
    lines.push(String::new());
    lines.truncate(rows);
    lines.iter().map(|l| fit(l, cols)).collect()
}

/// At most `max` lines of `table`, its last kept line replaced by
/// "… N more" when some are cut.
fn cut(mut table: Vec<String>, max: usize) -> Vec<String> {
    if table.len() <= max {
        return table;
    }
    let keep = max.saturating_sub(1);
    let hidden = table.len() - keep;
    table.truncate(keep);
    if max > 0 {
        table.push(format!("  … {hidden} more"));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(json: serde_json::Value) -> FabricStats {
        serde_json::from_value(json).unwrap()
    }

    fn snapshot(next: u64, committed: u64, dlq: u64) -> FabricStats {
        stats(serde_json::json!({
            "topics": [{"name": "orders.v1", "records": next, "dlq_records": dlq,
                "partitions": [{"partition": 0, "earliest_offset": 0, "next_offset": next, "tiers": []}]}],
            "groups": [{"group": "billing", "topic": "orders.v1", "lag": next - committed, "members": [],
                "partitions": [{"partition": 0, "committed": committed, "end": next, "lag": next - committed}]}],
        }))
    }

    #[test]
    fn rates_come_from_the_difference_of_two_snapshots() {
        let t0 = Instant::now();
        let before = Sample {
            stats: snapshot(100, 40, 1),
            at: t0,
        };
        let after = Sample {
            stats: snapshot(300, 90, 5),
            at: t0 + Duration::from_secs(2),
        };
        let lines = frame("d", Some(&before), &after, 80, 24);
        let topic = lines.iter().find(|l| l.starts_with("orders.v1")).unwrap();
        let cols: Vec<&str> = topic.split_whitespace().collect();
        // PARTS RECORDS PUB/S DLQ DLQ+/S
        assert_eq!(cols, ["orders.v1", "1", "300", "100.0", "5", "2.0"]);
        let group = lines.iter().find(|l| l.starts_with("billing")).unwrap();
        let cols: Vec<&str> = group.split_whitespace().collect();
        assert_eq!(cols, ["billing", "orders.v1", "210", "25.0"]);
    }

    #[test]
    fn a_frame_fits_80_by_24_however_many_topics() {
        let mut json = serde_json::json!({"topics": [], "groups": []});
        for i in 0..60 {
            json["topics"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                "name": format!("a.very.long.topic.name.that.does.not.fit.{i}"), "records": 1,
                "dlq_records": 0, "partitions": []}));
            json["groups"].as_array_mut().unwrap().push(serde_json::json!({
                "group": format!("group-{i}"), "topic": "t", "lag": i, "members": [], "partitions": []}));
        }
        let now = Sample {
            stats: stats(json),
            at: Instant::now(),
        };
        let lines = frame("/some/dir", None, &now, 80, 24);
        assert!(lines.len() <= 24, "{} lines", lines.len());
        assert!(lines.iter().all(|l| l.chars().count() <= 80));
        assert!(lines.iter().any(|l| l.starts_with("GROUP")), "{lines:#?}");
        assert!(lines.iter().any(|l| l.contains("more")), "{lines:#?}");
        assert!(lines.iter().any(|l| l.starts_with("group-0")), "{lines:#?}");
    }
}
