//! `wasi-escape`: reach for the world outside the sandbox through WASI, the
//! way any Rust program would (`std::fs`, `std::env`, `std::net`).

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use serde::Serialize;

/// One attempt to get out, and how it went.
#[derive(Serialize)]
pub struct Attempt {
    /// What was tried, e.g. `read /etc/passwd`.
    pub what: &'static str,
    /// `ok` if it got something, `empty` if it worked but got nothing (no
    /// environment variables, say), or the error the guest saw (its
    /// `std::io::Error` text).
    pub outcome: String,
    /// What an `ok` or `empty` got (a size, a count); empty otherwise.
    pub detail: String,
    /// Whether this reached the outside: a file read, listed or written, a
    /// non-empty environment or argument list, a socket that got anywhere.
    pub escaped: bool,
}

/// Errors that mean a socket got as far as the network: the host let it out.
fn reached_network(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | TimedOut
            | HostUnreachable
            | NetworkUnreachable
            | AddrInUse
    )
}

/// The attempt `what`, from its result: on success, what it got and
/// whether that is anything at all (an empty environment is `empty`, not
/// `ok`).
fn attempt(what: &'static str, result: io::Result<(String, bool)>) -> Attempt {
    match result {
        Ok((detail, escaped)) => Attempt {
            what,
            outcome: if escaped { "ok" } else { "empty" }.into(),
            detail,
            escaped,
        },
        Err(e) => Attempt {
            what,
            escaped: reached_network(&e),
            outcome: e.to_string(),
            detail: String::new(),
        },
    }
}

/// Every attempt, in order. Never panics: each failure is an outcome.
pub fn attempts() -> Vec<Attempt> {
    let ssh: SocketAddr = ([127, 0, 0, 1], 22).into();
    let mut out = vec![
        attempt(
            "read /etc/passwd",
            std::fs::read("/etc/passwd").map(|b| (format!("{} bytes", b.len()), true)),
        ),
        attempt(
            "read_dir /",
            std::fs::read_dir("/").map(|d| (format!("{} entries", d.count()), true)),
        ),
        attempt(
            "write /tmp/runway-escape",
            std::fs::write("/tmp/runway-escape", b"hostile was here\n").map(|()| {
                // Out already; do not leave litter behind as well.
                let _ = std::fs::remove_file("/tmp/runway-escape");
                ("wrote 17 bytes".into(), true)
            }),
        ),
    ];
    let vars = std::env::vars_os().count();
    out.push(attempt(
        "env vars",
        Ok((format!("{vars} variables"), vars > 0)),
    ));
    let args = std::env::args_os().count();
    out.push(attempt(
        "env args",
        Ok((format!("{args} arguments"), args > 0)),
    ));
    out.push(attempt(
        "tcp connect 127.0.0.1:22",
        TcpStream::connect_timeout(&ssh, Duration::from_secs(2))
            .map(|s| (format!("connected from {:?}", s.local_addr().ok()), true)),
    ));
    out.push(attempt(
        "udp bind 0.0.0.0:0",
        UdpSocket::bind("0.0.0.0:0").map(|s| (format!("bound {:?}", s.local_addr().ok()), true)),
    ));
    out.push(attempt(
        "resolve localhost",
        ("localhost", 22).to_socket_addrs().map(|a| {
            let n = a.count();
            (format!("{n} addresses"), n > 0)
        }),
    ));
    out
}
