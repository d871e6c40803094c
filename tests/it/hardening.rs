//! Attacks on a real `dbkeep serve` before login: bursts of failed logins (memory, throttle),
//! forged log lines, over-long fields, half-open connections, and a weak first password.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::http::*;

const ADMIN_PASSWORD: &str = "correct horse battery";

/// A sandbox with one SQLite database whose schedule never fires during a test, and a server.
fn serve() -> (Sandbox, Server) {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let port = free_port();
    sandbox.write_config(&format!(
        "timezone = \"UTC\"\nlisten = \"127.0.0.1:{port}\"\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n"
    ));
    let server = Server::start(&sandbox, port, &[("DBKEEP_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    (sandbox, server)
}

/// Sends `requests` at once, each from its own source address when `sources` says so, and
/// returns the status codes (0 for a connection that got no answer).
async fn burst(port: u16, requests: Vec<(Option<Ipv4Addr>, Vec<u8>)>) -> Vec<u16> {
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(requests.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for (source, request) in requests {
        let start = std::sync::Arc::clone(&start);
        tasks.spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            if let Some(ip) = source {
                socket
                    .bind(SocketAddr::new(IpAddr::V4(ip), 0))
                    .expect("bind a loopback source address");
            }
            let Ok(mut stream) = socket.connect(([127, 0, 0, 1], port).into()).await else {
                return 0;
            };
            start.wait().await;
            if stream.write_all(&request).await.is_err() {
                return 0;
            }
            let mut raw = Vec::new();
            let read =
                tokio::time::timeout(Duration::from_secs(120), stream.read_to_end(&mut raw)).await;
            match read {
                Ok(Ok(_)) => parse_response(&raw).map_or(0, |r| r.status),
                _ => 0,
            }
        });
    }
    tasks.join_all().await
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_failed_logins_keeps_memory_bounded_and_gives_it_back() {
    let (_sandbox, server) = serve();
    let csrf = server.login_csrf();
    // One failed login first: the hashing thread and its working memory then exist, as after
    // any login; that is the level the burst must come back to.
    let one = send(
        server.port,
        &login_request(server.port, &csrf, "admin", "wrong password", "/"),
    )
    .unwrap();
    assert_eq!(one.status, 401, "{}", one.text());
    let before = server.memory_kib("VmRSS");

    // Two bursts of 200 at once, each request from its own loopback address with its own
    // unknown user name, so the throttle lets every one through to the password check.
    let mut statuses = Vec::new();
    for round in 0..2u8 {
        let requests = (0..200u32)
            .map(|i| {
                let source = Ipv4Addr::new(127, 2 + round, (i / 200) as u8, (i % 200 + 1) as u8);
                let name = format!("nobody{round}x{i}");
                let request = login_request(server.port, &csrf, &name, "guess", "/");
                (Some(source), request)
            })
            .collect();
        statuses.extend(burst(server.port, requests).await);
    }
    let checked = count(&statuses, 401);
    let busy = count(&statuses, 503);
    assert_eq!(
        checked + busy,
        statuses.len(),
        "every attempt is checked (401) or refused at once (503): {statuses:?}"
    );
    assert!(checked >= 1, "no password was checked: {statuses:?}");
    assert!(busy >= 1, "the hashing queue never filled: {statuses:?}");

    let peak = server.memory_kib("VmHWM");

    assert!(
        peak < 128 * 1024,
        "peak resident memory {peak} KiB is above 128 MiB"
    );
    // Back to near where it was: measured from the binary's own resting size (which grows
    // with the code), so that only what the burst keeps counts. 16 MiB is under one password
    // hash's working memory, and far under what keeping 400 requests' would be.
    let bound = before + 16 * 1024;
    let deadline = Instant::now() + Duration::from_secs(30);
    let settled = loop {
        let now = server.memory_kib("VmRSS");
        if now < bound || Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        settled < bound,
        "resident memory stayed at {settled} KiB after the burst (before: {before} KiB)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_logins_for_one_user_cannot_pass_the_throttle() {
    let (_sandbox, server) = serve();
    let csrf = server.login_csrf();
    // 59 wrong passwords and, last, the right one, all at once from one address.
    let requests = (0..60)
        .map(|i| {
            let password = if i == 59 { ADMIN_PASSWORD } else { "wrong" };
            (
                None,
                login_request(server.port, &csrf, "admin", password, "/"),
            )
        })
        .collect();
    let statuses = burst(server.port, requests).await;
    let checked = count(&statuses, 401) + count(&statuses, 303);
    assert!(
        checked <= 5,
        "{checked} attempts reached the password check (at most 5 may): {statuses:?}"
    );
    assert_eq!(
        count(&statuses, 429) + checked + count(&statuses, 503),
        60,
        "{statuses:?}"
    );
    assert!(count(&statuses, 429) >= 50, "{statuses:?}");
    // Five failures lock the user out, the right password included; when the right one was
    // among the five checked, only four failed and the next right one gets in.
    let after = send(
        server.port,
        &login_request(server.port, &csrf, "admin", ADMIN_PASSWORD, "/"),
    )
    .unwrap();
    if count(&statuses, 401) >= 5 {
        assert_eq!(after.status, 429, "{statuses:?}: {}", after.text());
        assert!(after.header("retry-after").is_some());
    } else {
        assert_eq!(count(&statuses, 303), 1, "{statuses:?}");
        assert_eq!(after.status, 303, "{statuses:?}: {}", after.text());
    }
}

#[test]
fn user_names_cannot_forge_log_lines_or_flood_the_log() {
    let (_sandbox, server) = serve();
    let csrf = server.login_csrf();
    let forged = "intruder\n2026-12-01T00:00:00.000000Z  INFO dbkeep::web::auth: logged in user=admin\x1b[2J\x1b]0;pwned\x07";
    let reply = send(
        server.port,
        &login_request(server.port, &csrf, forged, "guess", "/"),
    )
    .unwrap();
    assert_eq!(reply.status, 401, "{}", reply.text());
    let log = server.log();
    assert!(
        log.lines().any(|l| l.contains("failed login")),
        "the failure was not logged:\n{log}"
    );
    // The forged text appears only escaped, inside the lines about the failure (the warning
    // and the audit line), never at the start of a line of its own.
    for line in log.lines().filter(|l| l.contains("logged in user=admin")) {
        assert!(
            (line.contains("failed login") || line.contains("dbkeep::audit"))
                && line.contains("intruder\\n")
                && !line.starts_with("2026-12-01"),
            "a forged line reached the log: {line:?}"
        );
    }
    assert!(
        !server.log_bytes().contains(&0x1b),
        "an escape character reached the log"
    );

    // Over-long user names are refused unread: neither the log nor the process grows.
    let before_log = server.log_bytes().len();
    let huge = "A".repeat(1_900_000);
    for _ in 0..60 {
        // The server may answer and close before the whole body is sent: a reset is a refusal too.
        let request = login_request(server.port, &csrf, &huge, "guess", "/");
        let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let _ = stream.write_all(&request);
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        if let Ok(reply) = parse_response(&raw) {
            assert!(
                matches!(reply.status, 400 | 413),
                "status {}: {}",
                reply.status,
                reply.text()
            );
        }
    }
    let grown = server.log_bytes().len() - before_log;
    assert!(grown < 64 * 1024, "the log grew by {grown} bytes");
    let long = "B".repeat(300);
    let reply = send(
        server.port,
        &login_request(server.port, &csrf, &long, "guess", "/"),
    )
    .unwrap();
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains("too long"), "{}", reply.text());
    let rss = server.memory_kib("VmRSS");
    assert!(
        rss < 64 * 1024,
        "resident memory {rss} KiB after long names"
    );
}

#[test]
fn half_open_connections_are_timed_out_and_capped() {
    let (_sandbox, server) = serve();
    let baseline = server.open_fds();
    let mut sockets: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
            s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .expect("write a partial request");
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let open = server.open_fds().saturating_sub(baseline);
    assert!(
        open <= 256 + 4,
        "the server holds {open} connections open at once (the cap is 256)"
    );
    let start = Instant::now();
    for s in &mut sockets {
        let mut rest = Vec::new();
        // The server closes the connection: end of stream, or a reset.
        let closed = match s.read_to_end(&mut rest) {
            Ok(_) => true,
            Err(e) => {
                e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut
            }
        };
        assert!(closed, "a half-open connection stayed open");
    }
    assert!(
        start.elapsed() < Duration::from_secs(50),
        "closing took {:?}",
        start.elapsed()
    );
    let health = http_get(server.port, "/healthz", None).unwrap();
    assert!(matches!(health.status, 200 | 503), "{}", health.text());
}

#[test]
fn a_short_first_admin_password_is_refused() {
    let sandbox = Sandbox::new();
    let port = free_port();
    sandbox.write_config(&format!("listen = \"127.0.0.1:{port}\"\n"));
    let run = run_cmd(
        sandbox
            .cmd()
            .arg("serve")
            .env("DBKEEP_ADMIN_PASSWORD", "short")
            .timeout(Duration::from_secs(60)),
    );
    run.assert_code(2);
    assert!(
        run.stderr.contains("DBKEEP_ADMIN_PASSWORD") && run.stderr.contains("at least 8"),
        "{run:?}"
    );
}
