//! Under systemd (`Type=notify`): `dbkeep serve` says READY=1 once its admin answers, pings
//! the watchdog at half of `WatchdogSec`, and says STOPPING=1 on SIGTERM, over the real
//! notification protocol (datagrams on `NOTIFY_SOCKET`).

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::browser::{free_port, http_status, signal};
use crate::common::*;

/// The next datagram, or `None` after `limit`.
fn next(socket: &UnixDatagram, limit: Duration) -> Option<String> {
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    socket
        .recv(&mut buf)
        .ok()
        .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn serve_tells_systemd_it_is_ready_alive_and_stopping() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let port = free_port();
    sandbox.write_config(&format!(
        "listen = \"127.0.0.1:{port}\"\n[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n"
    ));
    let path = sandbox.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    // As systemd starts it: WATCHDOG_PID names the service's own process (exec keeps the
    // shell's).
    let mut cmd = Command::new("sh");
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    let mut child = cmd
        .current_dir(sandbox.path())
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" --config \"$1\" serve")
        .arg(bin_path())
        .arg(sandbox.config_path())
        .env("DBKEEP_ADMIN_PASSWORD", "a systemd test password")
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = next(&socket, Duration::from_secs(30));
    let answered = http_status(port, "/healthz");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let ready = ready.expect("no READY=1 within 30 s");
        assert!(ready.contains("READY=1"), "{ready}");
        assert!(
            ready.contains(&format!(
                "STATUS=backing up; the admin at http://127.0.0.1:{port}/"
            )),
            "{ready}"
        );
        // Ready means answering.
        assert!(answered.is_some(), "the admin did not answer once ready");
        // Pings at half of 400 ms: several within a second and a half.
        let start = Instant::now();
        let mut pings = 0;
        while start.elapsed() < Duration::from_millis(1500) {
            if next(&socket, Duration::from_millis(500)).is_some_and(|m| m.contains("WATCHDOG=1")) {
                pings += 1;
            }
        }
        assert!(pings >= 4, "{pings} watchdog pings in 1.5 s");
        signal("-TERM", [child.id()]);
        let mut stopping = None;
        while let Some(m) = next(&socket, Duration::from_secs(10)) {
            if m.contains("STOPPING=1") {
                stopping = Some(m);
                break;
            }
        }
        assert!(stopping.is_some(), "no STOPPING=1 after SIGTERM");
        let status = child.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }));
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
