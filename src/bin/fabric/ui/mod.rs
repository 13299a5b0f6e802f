//! `fabric ui --data DIR [--listen 127.0.0.1:PORT] [--allow-replay]`: the
//! local dev console, a read-only web page and JSON API over a data
//! directory, served on loopback by a small blocking HTTP/1.1 server (std
//! `TcpListener`, one thread per connection, a bounded number at once).
//!
//! It owns the listener, the connection threads and the flags. It must never
//! bind a non-loopback address unless the user names one with `--listen`,
//! never open the data directory as writer except for a replay that
//! `--allow-replay` enabled, and never panic on a request.

mod api;
mod http;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Args;
use eventfabric::FabricConfig;

use crate::shared::{CliResult, fail};

/// The port `fabric ui` listens on when `--listen` is not given.
pub(crate) const DEFAULT_PORT: u16 = 7460;
/// Connections served at once; more get 503 at once.
const MAX_CONNECTIONS: usize = 32;

/// Arguments of `ui`.
#[derive(Args, Debug)]
pub(crate) struct UiArgs {
    /// The address to serve on (default 127.0.0.1:7460; port 0 picks a free
    /// one). A non-loopback address exposes the console: name it explicitly.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// Enable the replay action (`POST /api/dlq/<topic>/replay`): without it
    /// the console refuses replays with HTTP 403.
    #[arg(long)]
    allow_replay: bool,
    /// Replay rate limit, dead letters per second, e.g. 100/s.
    #[arg(long, default_value = "100/s", value_name = "N/s")]
    replay_rate: String,
}

/// Serves the console on `data` until the process is stopped.
pub(crate) fn run(data: &Path, args: UiArgs, tiers: &FabricConfig) -> CliResult {
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| format!("127.0.0.1:{DEFAULT_PORT}"));
    let addr: SocketAddr = match listen.parse() {
        Ok(a) => a,
        Err(e) => {
            return fail(format!(
                "--listen {listen:?} is not IP:PORT ({e}), e.g. 127.0.0.1:7460"
            ));
        }
    };
    let replay_rate = match args.replay_rate.trim_end_matches("/s").parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => n,
        _ => {
            return fail(format!(
                "--replay-rate {:?} is not a positive N/s, e.g. 100/s",
                args.replay_rate
            ));
        }
    };
    // Fail before serving when the directory is not a data directory.
    drop(eventfabric::Fabric::open_read_only_with(data, tiers)?);
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => return fail(format!("cannot listen on {addr}: {e}")),
    };
    let bound = listener.local_addr()?;
    let mut allowed_hosts = vec![bound.to_string()];
    if bound.ip().is_loopback() {
        allowed_hosts.push(format!("localhost:{}", bound.port()));
    }
    let console = Arc::new(api::Console {
        data: data.to_path_buf(),
        tiers: tiers.clone(),
        allow_replay: args.allow_replay,
        replay_rate,
        allowed_hosts,
    });
    println!("fabric ui: serving {} on http://{bound}/", data.display());
    if !bound.ip().is_loopback() {
        eprintln!(
            "fabric ui: warning: {bound} is not loopback: the console is reachable from the network"
        );
    }
    if args.allow_replay {
        println!("fabric ui: replay enabled, at most {replay_rate}/s");
    } else {
        println!("fabric ui: replay disabled (start with --allow-replay to enable it)");
    }
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        if open.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::AcqRel);
            let busy = api::error_response(503, "too many connections; retry");
            http::write_response(&mut stream, busy.status, busy.content_type, &busy.body);
            continue;
        }
        let console = console.clone();
        let slot = open.clone();
        let spawned = std::thread::Builder::new()
            .name("fabric-ui-conn".into())
            .spawn(move || {
                serve(&console, stream);
                slot.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            open.fetch_sub(1, Ordering::AcqRel);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads one request from `stream`, answers it and closes the connection.
fn serve(console: &api::Console, mut stream: TcpStream) {
    let response = match http::read_request(&mut stream) {
        Ok(request) => {
            let mut response = console.handle(&request);
            if request.method == "HEAD" {
                response.body.clear();
            }
            response
        }
        Err(bad) => api::error_response(bad.status, &bad.message),
    };
    http::write_response(
        &mut stream,
        response.status,
        response.content_type,
        &response.body,
    );
}
