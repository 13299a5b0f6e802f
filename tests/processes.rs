//! Tests that need a second process: kill -9 of an `Always` appender, and a
//! read-only reader in another process tailing a live writer.
//!
//! The child side of each test is a test function of this same binary that
//! does nothing unless its environment variable is set; the parent re-runs
//! this executable with `--exact <name>` to start it.
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{XorShift, tiny_config, value_for};
use eventfabric::{Durability, Log, LogConfig};

fn child(test: &str, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

fn kill9_config() -> LogConfig {
    let mut c = tiny_config();
    c.segment_bytes = 16 << 10;
    c.durability = Durability::Always;
    c
}

/// Child: appends with `Always` forever, printing each acknowledged offset.
#[test]
fn kill9_child_appender() {
    let Ok(dir) = std::env::var("EF_KILL9_DIR") else {
        return;
    };
    let log = Log::open(&dir, kill9_config()).expect("child open");
    loop {
        let next = log.next_offset();
        let values: Vec<Vec<u8>> = (0..1 + next % 5).map(|i| value_for(next + i, 60)).collect();
        let range = log.append_batch(&values).expect("child append");
        println!("ACK {}", range.end);
    }
}

/// Rounds of kill -9; `ROUNDS=1000 cargo test --release --test processes`
/// runs a long campaign (CI runs the default).
fn kill9_rounds() -> u64 {
    match std::env::var("ROUNDS") {
        Ok(n) => n.parse().expect("ROUNDS must be a whole number"),
        Err(_) => 24,
    }
}

#[test]
fn every_acknowledged_record_survives_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = XorShift(0x5EED);
    let mut acked_max = 0u64;
    let rounds = kill9_rounds();
    for round in 0..rounds {
        let mut proc = child(
            "kill9_child_appender",
            &[("EF_KILL9_DIR", dir.path().display().to_string())],
        )
        .spawn()
        .expect("spawn child");
        let stdout = proc.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line
                    .strip_prefix("ACK ")
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    let _ = tx.send(n);
                }
            }
        });
        // Wait for the first acknowledgement, then kill at a random moment.
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("child acknowledged nothing");
        acked_max = acked_max.max(first);
        std::thread::sleep(Duration::from_millis(1 + rng.below(40)));
        proc.kill().expect("kill -9");
        proc.wait().expect("reap");
        reader.join().expect("reader thread");
        while let Ok(n) = rx.try_recv() {
            acked_max = acked_max.max(n);
        }
        let log = Log::open(dir.path(), kill9_config()).expect("reopen after kill -9");
        assert!(
            log.next_offset() >= acked_max,
            "round {round}: acknowledged up to {acked_max}, log ends at {}",
            log.next_offset()
        );
        for r in log.iter(0).expect("iter") {
            let r = r.expect("no corrupt record after kill -9");
            assert_eq!(
                r.value,
                value_for(r.offset, 60),
                "round {round}, offset {}",
                r.offset
            );
        }
        // What the log holds now (acknowledged or not) is the new baseline.
        acked_max = log.next_offset();
    }
    assert!(acked_max > rounds, "the child made progress: {acked_max}");
    eprintln!("kill -9: {rounds} rounds, {acked_max} records survived and checked");
}

/// Child: opens the log read-only and follows it until it holds `EF_TAIL_N`
/// records, checking that what it sees is always a prefix of what the
/// writer writes.
#[test]
fn tail_child_reader() {
    let (Ok(dir), Ok(n)) = (std::env::var("EF_TAIL_DIR"), std::env::var("EF_TAIL_N")) else {
        return;
    };
    let n: u64 = n.parse().expect("count");
    let deadline = Instant::now() + Duration::from_secs(60);
    let log = Log::open_read_only(&dir).expect("read-only open");
    let mut next = 0u64;
    let mut views = 0u64;
    while next < n {
        assert!(Instant::now() < deadline, "timed out at {next}");
        log.refresh().expect("refresh");
        views += 1;
        for r in log.iter(next).expect("iter") {
            let r = r.expect("reader saw a corrupt or torn batch");
            assert_eq!(r.offset, next);
            assert_eq!(r.value, value_for(r.offset, (r.offset % 200) as usize));
            next += 1;
        }
    }
    println!("SAW {next} IN {views} VIEWS");
}

#[test]
fn a_reader_in_another_process_sees_a_growing_prefix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let total = 30_000u64;
    let mut config = tiny_config();
    config.segment_bytes = 256 << 10;
    let log = Log::open(dir.path(), config).expect("open");
    log.append(&value_for(0, 0)).expect("first record");
    let proc = child(
        "tail_child_reader",
        &[
            ("EF_TAIL_DIR", dir.path().display().to_string()),
            ("EF_TAIL_N", total.to_string()),
        ],
    )
    .spawn()
    .expect("spawn reader");
    let mut next = 1u64;
    while next < total {
        let values: Vec<Vec<u8>> = (next..(next + 7).min(total))
            .map(|o| value_for(o, (o % 200) as usize))
            .collect();
        next = log.append_batch(&values).expect("append").end;
    }
    let out = proc.wait_with_output().expect("reader finished");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "reader failed ({}): {text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&format!("SAW {total} IN")), "{text}");
}

#[test]
fn readers_in_process_see_only_whole_batches_while_the_writer_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = tiny_config();
    config.segment_bytes = 64 << 10;
    let log = std::sync::Arc::new(Log::open(dir.path(), config).expect("open"));
    let total = 40_000u64;
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut passes = 0u64;
                loop {
                    let end = log.next_offset();
                    let mut expect = 0u64;
                    for b in log.batches(0).expect("batches") {
                        let b = b.expect("torn or corrupt batch seen by a reader");
                        for r in b.records() {
                            assert_eq!(r.offset, expect);
                            assert_eq!(r.value, &value_for(r.offset, 30)[..]);
                            expect += 1;
                        }
                    }
                    // Batches are atomic: a reader never ends mid-batch.
                    assert!(expect >= end, "saw {expect} of at least {end}");
                    assert_eq!(expect % 5, 0, "a batch of 5 was split");
                    passes += 1;
                    if end >= total {
                        return passes;
                    }
                }
            })
        })
        .collect();
    let mut next = 0;
    while next < total {
        let values: Vec<Vec<u8>> = (next..next + 5).map(|o| value_for(o, 30)).collect();
        next = log.append_batch(&values).expect("append").end;
    }
    for r in readers {
        assert!(r.join().expect("reader") > 0);
    }
}

#[test]
fn concurrent_appenders_get_dense_unique_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = tiny_config();
    config.segment_bytes = 64 << 10;
    config.durability = Durability::Always;
    let log = std::sync::Arc::new(Log::open(dir.path(), config.clone()).expect("open"));
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..200u64)
                    .map(|i| {
                        let v = format!("{t}:{i}");
                        (log.append(v.as_bytes()).expect("append"), v)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<(u64, String)> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .collect();
    all.sort();
    for (i, (o, _)) in all.iter().enumerate() {
        assert_eq!(*o, i as u64);
    }
    assert_eq!(log.durable_offset(), 1600);
    drop(log);
    let log = Log::open(dir.path(), config).expect("reopen");
    for (o, v) in all {
        assert_eq!(
            log.read(o, eventfabric::ReadLimit::records(1))
                .expect("read")[0]
                .value,
            v.as_bytes()
        );
    }
}

/// Child: tries to open the log as a second writer and prints what happened.
#[test]
fn second_writer_child() {
    let Ok(dir) = std::env::var("EF_SECOND_WRITER_DIR") else {
        return;
    };
    match Log::open(&dir, tiny_config()) {
        Ok(_) => println!("OPENED"),
        Err(eventfabric::Error::Locked { pid, .. }) => println!("LOCKED BY {pid}"),
        Err(e) => println!("OTHER {e}"),
    }
}

#[test]
fn a_second_writer_in_another_process_is_refused_with_our_pid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), tiny_config()).expect("open");
    log.append(b"mine").expect("append");
    let out = child(
        "second_writer_child",
        &[("EF_SECOND_WRITER_DIR", dir.path().display().to_string())],
    )
    .output()
    .expect("run child");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("LOCKED BY {}", std::process::id())),
        "{text}"
    );
    drop(log);
    let out = child(
        "second_writer_child",
        &[("EF_SECOND_WRITER_DIR", dir.path().display().to_string())],
    )
    .output()
    .expect("run child");
    assert!(String::from_utf8_lossy(&out.stdout).contains("OPENED"));
}
