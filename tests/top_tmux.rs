//! `fabric top` in a real terminal: tmux runs the live view over a fixture
//! data directory in an 80×24 pane; the pane shows the topic names and the
//! group's lag, follows a writer that publishes beside it, and `q` quits
//! with exit status 0.
//!
//! tmux must be on PATH (.ci/run installs it): the test fails loudly when it
//! is missing, it never skips.

mod console_fixture;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use console_fixture::{BILLING, GROUP, GROUP_LAG, ORDERS};
use eventfabric::{Draft, Fabric, FabricConfig};
use serde_json::json;

/// A private tmux server (its own socket in a temp dir), killed when dropped.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "tmux is missing or failed to start ({e}): install it (Debian: apt-get \
                     install -y tmux; .ci/run does) — this test never skips"
                )
            })
    }

    fn pane(&self) -> String {
        let out = self.run(&["capture-pane", "-p", "-t", "top"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the pane satisfies `ok`; panics with the last pane text.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let pane = self.pane();
            if ok(&pane) {
                return pane;
            }
            assert!(
                Instant::now() < deadline,
                "the pane never showed {what}:\n{pane}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn line_with<'a>(pane: &'a str, start: &str) -> Option<Vec<&'a str>> {
    pane.lines()
        .find(|l| l.starts_with(start))
        .map(|l| l.split_whitespace().collect())
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

#[test]
fn top_shows_topics_and_lag_live_in_80x24_and_quits_on_q() {
    assert!(
        Command::new("tmux").arg("-V").output().is_ok(),
        "tmux is missing: install it (Debian: apt-get install -y tmux; .ci/run does) — this \
         test never skips"
    );
    let data = tempfile::tempdir().unwrap();
    console_fixture::build(data.path());
    let work = tempfile::tempdir().unwrap();
    let status_file = work.path().join("status");
    let tmux = Tmux {
        socket: work.path().join("tmux.sock"),
    };
    let command = format!(
        "TERM=xterm-256color {} --data {} top --interval 0.3; echo $? > {}; sleep 60",
        shell_quote(Path::new(env!("CARGO_BIN_EXE_fabric"))),
        shell_quote(data.path()),
        shell_quote(&status_file),
    );
    let out = tmux.run(&[
        "new-session",
        "-d",
        "-x",
        "80",
        "-y",
        "24",
        "-s",
        "top",
        &command,
    ]);
    assert!(out.status.success(), "tmux new-session: {out:?}");
    let pane = tmux.wait_for("both topics and the group's lag", |p| {
        p.contains(BILLING)
            && p.contains(ORDERS)
            && line_with(p, GROUP).is_some_and(|cols| cols.get(2) == Some(&&*GROUP_LAG.to_string()))
    });
    assert!(pane.contains("q: quit"), "{pane}");
    assert!(pane.lines().count() <= 24, "{pane}");
    assert!(pane.lines().all(|l| l.chars().count() <= 80), "{pane}");

    // A writer publishes beside the read-only view: the next frames show
    // the larger lag and a publish rate above zero.
    let fabric = Fabric::open(data.path(), FabricConfig::default()).unwrap();
    let mut producer = fabric.producer(BILLING, "test").unwrap();
    for i in 0..2 {
        producer
            .send(Draft::new(
                "billing.invoice.issued",
                Some("tenant-1"),
                json!({"late": i}),
            ))
            .unwrap();
    }
    fabric.flush().unwrap();
    let want_lag = (GROUP_LAG + 2).to_string();
    let pane = tmux.wait_for("the lag after two more events", |p| {
        line_with(p, GROUP).is_some_and(|cols| cols.get(2) == Some(&want_lag.as_str()))
    });
    let billing = line_with(&pane, BILLING).unwrap();
    assert_eq!(billing.len(), 6, "{pane}");
    drop(producer);
    fabric.close().unwrap();

    tmux.run(&["send-keys", "-t", "top", "q"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(&status_file)
            && !s.trim().is_empty()
        {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "fabric top did not exit on q:\n{}",
            tmux.pane()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.trim(), "0", "fabric top exit status");
}
