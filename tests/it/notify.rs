//! Notifications against a real HTTP receiver on loopback: webhooks (signed), pings, retries,
//! failures recorded, and a receiver that hangs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::Mac;
use serde_json::Value;

use crate::common::*;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    method: String,
    pub(crate) path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// How the receiver answers.
#[derive(Clone, Copy)]
pub(crate) enum Answer {
    Ok,
    Error,
    /// Reads the request, then says nothing for this long.
    Hang(Duration),
}

/// An HTTP server on loopback that records every request.
pub(crate) struct Receiver {
    port: u16,
    pub(crate) seen: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    pub(crate) fn start(answer: Answer) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let method = parts.next().unwrap_or_default().to_string();
                    let path = parts.next().unwrap_or_default().to_string();
                    let mut headers = Vec::new();
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            headers.push((k.trim().to_string(), v.trim().to_string()));
                        }
                    }
                    let length = headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .map_or(0, |(_, v)| v.parse().unwrap());
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    log.lock().unwrap().push(Request {
                        method,
                        path,
                        headers,
                        body,
                    });
                    let status = match answer {
                        Answer::Ok => "200 OK",
                        Answer::Error => "500 Internal Server Error",
                        Answer::Hang(d) => {
                            std::thread::sleep(d);
                            return;
                        }
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                });
            }
        });
        Receiver { port, seen }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The requests so far, once `count` of them arrived (or fails after a while).
    #[track_caller]
    pub(crate) fn wait_for(&self, count: usize) -> Vec<Request> {
        let start = Instant::now();
        loop {
            let seen = self.seen.lock().unwrap().clone();
            if seen.len() >= count {
                return seen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "expected {count} requests, got {seen:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn webhooks_and_pings_hear_of_every_backup_signed_and_in_order() {
    let hooks = Receiver::start(Answer::Ok);
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config(&format!(
        "[notify]\nping_url = \"{}\"\n\
         [[notify.webhook]]\nurl = \"{}\"\non = [\"success\", \"failure\"]\nsecret_env = \"HOOK_SECRET\"\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
        hooks.url("/ping/abc"),
        hooks.url("/hook?token=t"),
    ));
    let run = |args: &[&str]| run_cmd(sandbox.cmd().args(args).env("HOOK_SECRET", "s3cret"));
    run(&["backup"]).assert_success();
    let seen = hooks.wait_for(3);
    let pings: Vec<_> = seen
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(pings, ["/ping/abc/start", "/ping/abc"], "{seen:#?}");
    let hook = seen.iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(hook.path, "/hook?token=t");
    let body = hook.json();
    let row = &sandbox.rows_for("app")[0];
    assert_eq!(body["event"], "success", "{body:#}");
    assert_eq!(body["database"], "app");
    assert_eq!(body["status"], "success");
    assert_eq!(body["backup_id"], row["id"]);
    assert_eq!(body["file_name"], row["file_name"]);
    assert_eq!(body["size_bytes"], row["size_bytes"]);
    assert!(
        body["host"].as_str().is_some_and(|h| !h.is_empty()),
        "{body:#}"
    );
    // The signature is the HMAC-SHA256 of the body under the secret.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
    mac.update(&hook.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        hook.header("X-Dbkeep-Signature"),
        Some(format!("sha256={expected}").as_str())
    );

    // A failed backup: the fail ping and a failure event with the error.
    std::fs::remove_file(sandbox.path().join("app.db")).unwrap();
    run(&["backup"]).assert_code(1);
    let seen = hooks.wait_for(6);
    let later = &seen[3..];
    assert!(
        later.iter().any(|r| r.path == "/ping/abc/fail"),
        "{later:#?}"
    );
    let failure = later.iter().find(|r| r.method == "POST").unwrap().json();
    assert_eq!(failure["event"], "failure");
    assert_eq!(failure["status"], "failed");
    assert!(
        failure["error"]
            .as_str()
            .is_some_and(|e| e.contains("app.db")),
        "{failure:#}"
    );
    // Nothing failed to be delivered.
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    let failed: i64 = conn
        .query_row("SELECT count(*) FROM failed_notifications", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(failed, 0);
}

#[test]
fn a_receiver_that_fails_is_tried_three_times_then_recorded_and_the_backup_stands() {
    let hooks = Receiver::start(Answer::Error);
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config(&format!(
        "[[notify.webhook]]\nurl = \"{}\"\non = [\"success\"]\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
        hooks.url("/hook"),
    ));
    sandbox.run(&["backup"]).assert_success();
    assert_eq!(hooks.wait_for(3).len(), 3);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(hooks.seen.lock().unwrap().len(), 3, "exactly three tries");
    assert_eq!(sandbox.rows_for("app")[0]["status"], "success");
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    let (channel, event, error): (String, String, String) = conn
        .query_row(
            "SELECT channel, event, error FROM failed_notifications",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(channel, format!("webhook {}", hooks.url("")));
    assert_eq!(event, "success");
    assert!(error.contains("500"), "{error}");
    // And the test command says so too.
    let run = sandbox.run(&["notify", "test"]);
    run.assert_code(1);
    assert!(run.stdout.starts_with("failed  webhook "), "{run:?}");
    // /metrics counts it.
    let (port, metrics_port) = (crate::http::free_port(), crate::http::free_port());
    sandbox.write_config(&format!(
        "listen = \"127.0.0.1:{port}\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n\
         [[notify.webhook]]\nurl = \"{}\"\non = [\"success\"]\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n",
        hooks.url("/hook"),
    ));
    let _server = crate::http::Server::start(
        &sandbox,
        port,
        &[("DBKEEP_ADMIN_PASSWORD", "a long password")],
    );
    let metrics = metrics_when_up(metrics_port);
    let line = format!(
        "dbkeep_notifications_failed_total{{channel=\"webhook {}\"}} 1\n",
        hooks.url("")
    );
    assert!(metrics.contains(&line), "{metrics}");
}

#[test]
fn channels_are_named_by_their_host_or_a_name_never_by_the_secret_in_their_urls() {
    let hooks = Receiver::start(Answer::Error);
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let (port, metrics_port) = (crate::http::free_port(), crate::http::free_port());
    // The secrets of healthchecks.io, a webhook with a token and Slack are in path and query.
    let secrets = ["PINGSECRET", "HOOKSECRET", "QUERYSECRET", "SLACKSECRET"];
    sandbox.write_config(&format!(
        "listen = \"127.0.0.1:{port}\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n\
         [notify]\nping_url = \"{}\"\n\
         [[notify.webhook]]\nurl = \"{}\"\non = [\"success\"]\n\
         [[notify.webhook]]\nurl = \"{}\"\nname = \"ops-slack\"\nformat = \"slack\"\non = [\"success\"]\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n",
        hooks.url("/ping/PINGSECRET"),
        hooks.url("/hook/HOOKSECRET?token=QUERYSECRET"),
        hooks.url("/services/T0/B0/SLACKSECRET"),
    ));
    let origin = format!("http://127.0.0.1:{}", hooks.port);
    let leaks = |what: &str, text: &str| {
        for secret in secrets {
            assert!(!text.contains(secret), "{what} holds {secret}:\n{text}");
        }
    };
    // Every try fails: the start and success pings and both webhooks, three times each. The
    // debug log shows every try and the warning after the last.
    let backup = sandbox.run(&["-vv", "backup"]);
    backup.assert_success();
    assert_eq!(hooks.wait_for(12).len(), 12);
    assert!(
        backup
            .stderr
            .contains(&format!("channel=webhook {origin} "))
            && backup.stderr.contains("channel=webhook ops-slack ")
            && backup.stderr.contains(&format!("channel=ping {origin} "))
            && backup.stderr.contains("notification failed after 3 tries"),
        "{backup:?}"
    );
    leaks("the log", &format!("{}{}", backup.stdout, backup.stderr));
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    let mut stmt = conn
        .prepare("SELECT channel, error FROM failed_notifications ORDER BY channel")
        .unwrap();
    let rows: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let channels: Vec<&str> = rows.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        channels,
        [
            format!("ping {origin}"),
            format!("ping {origin}"),
            format!("webhook {origin}"),
            "webhook ops-slack".to_string()
        ],
        "{rows:?}"
    );
    leaks("the catalog", &format!("{rows:?}"));
    let test = sandbox.run(&["notify", "test"]);
    test.assert_code(1);
    assert!(
        test.stdout.contains(&format!("failed  webhook {origin}  "))
            && test.stdout.contains("failed  webhook ops-slack  "),
        "{test:?}"
    );
    leaks("notify test", &format!("{}{}", test.stdout, test.stderr));
    // /metrics, served without a login on metrics_listen.
    let _server = crate::http::Server::start(
        &sandbox,
        port,
        &[("DBKEEP_ADMIN_PASSWORD", "a long password")],
    );
    let metrics = metrics_when_up(metrics_port);
    for line in [
        format!("dbkeep_notifications_failed_total{{channel=\"ping {origin}\"}} 2\n"),
        format!("dbkeep_notifications_failed_total{{channel=\"webhook {origin}\"}} 1\n"),
        "dbkeep_notifications_failed_total{channel=\"webhook ops-slack\"} 1\n".to_string(),
    ] {
        assert!(metrics.contains(&line), "{line}{metrics}");
    }
    leaks("/metrics", &metrics);
}

#[test]
fn a_receiver_that_hangs_does_not_delay_the_next_backup() {
    let hooks = Receiver::start(Answer::Hang(Duration::from_secs(60)));
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("a.db"));
    create_sample_sqlite(&sandbox.path().join("b.db"));
    sandbox.write_config(&format!(
        "[[notify.webhook]]\nurl = \"{}\"\non = [\"success\"]\n\
         [[databases]]\nname = \"a\"\nurl = \"sqlite:a.db\"\n\
         [[databases]]\nname = \"b\"\nurl = \"sqlite:b.db\"\n",
        hooks.url("/hook"),
    ));
    sandbox.run(&["backup"]).assert_success();
    let time = |db: &str, field: &str| {
        chrono::DateTime::parse_from_rfc3339(sandbox.rows_for(db)[0][field].as_str().unwrap())
            .unwrap()
    };
    let gap = time("b", "started_at") - time("a", "finished_at");
    assert!(
        gap < chrono::Duration::seconds(2),
        "b waited {gap} for a's notification"
    );
    assert_eq!(sandbox.rows_for("b")[0]["status"], "success");
}

#[test]
fn bad_notify_settings_are_named() {
    let sandbox = Sandbox::new();
    sandbox.write_config(
        "[notify]\nping_url = \"ftp://x\"\n[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
    );
    let run = sandbox.run(&["list"]);
    run.assert_code(2);
    assert!(run.stderr.contains("`ping_url` must be an http"), "{run:?}");
    sandbox.write_config(
        "[[notify.webhook]]\nurl = \"http://127.0.0.1:1/\"\non = [\"sometimes\"]\n[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
    );
    let run = sandbox.run(&["list"]);
    run.assert_code(2);
    assert!(run.stderr.contains("unknown event `sometimes`"), "{run:?}");
    // An unknown `tls=` is refused by `check` as when loading, never left for the first mail.
    sandbox.write_config(
        "[notify.email]\nsmtp_url = \"smtp://127.0.0.1:1?tls=always\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n",
    );
    let run = sandbox.run(&["check"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("line 2")
            && run.stderr.contains("`tls=always`")
            && run.stderr.contains("tls=required"),
        "{run:?}"
    );
}

/// aiosmtpd (installed by the test script into target/test-venv) on a free port, storing what
/// it receives in a Maildir.
struct SmtpServer {
    server: Running,
    port: u16,
    maildir: std::path::PathBuf,
}

impl SmtpServer {
    fn start(dir: &std::path::Path) -> SmtpServer {
        let port = crate::http::free_port();
        let maildir = dir.join("maildir");
        let child = spawn_listening(
            std::process::Command::new(venv_bin("python", "aiosmtpd"))
                .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(&maildir),
            port,
            "aiosmtpd",
        );
        SmtpServer {
            server: child,
            port,
            maildir,
        }
    }

    /// aiosmtpd offering AUTH without TLS (tests/it/support/smtp_auth.py), keeping each login
    /// it is given.
    fn start_offering_auth(dir: &std::path::Path) -> SmtpServer {
        let port = crate::http::free_port();
        let maildir = dir.join("maildir");
        let child = spawn_listening(
            std::process::Command::new(venv_bin("python", "aiosmtpd"))
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/smtp_auth.py"))
                .arg(port.to_string())
                .arg(&maildir)
                .arg(dir.join("logins")),
            port,
            "aiosmtpd with AUTH",
        );
        SmtpServer {
            server: child,
            port,
            maildir,
        }
    }

    /// The logins (`LOGIN PASSWORD`) it was given, when started by [`Self::start_offering_auth`].
    fn logins(&self) -> Vec<String> {
        let file = self.maildir.with_file_name("logins");
        std::fs::read_to_string(file)
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// The messages received so far.
    fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) {
                for e in entries.flatten() {
                    out.push(std::fs::read_to_string(e.path()).unwrap());
                }
            }
        }
        out
    }

    fn stop(&mut self) {
        self.server.stop();
    }
}

#[test]
fn a_failed_backup_sends_exactly_one_mail_and_a_dead_smtp_server_fails_nothing() {
    let sandbox = Sandbox::new();
    let mut smtp = SmtpServer::start(sandbox.path());
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let port = smtp.port;
    let config = |on: &str| {
        format!(
            "public_url = \"https://backups.example.com/admin\"\n\
             [notify.email]\nsmtp_url = \"smtp://127.0.0.1:{}\"\nfrom = \"dbkeep@example.com\"\nto = [\"ops@example.com\", \"oncall@example.com\"]\n{on}\
             [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
            port
        )
    };
    sandbox.write_config(&config(""));
    // The default events leave a success alone.
    sandbox.run(&["backup"]).assert_success();
    std::fs::remove_file(sandbox.path().join("app.db")).unwrap();
    sandbox.run(&["backup"]).assert_code(1);
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let mail = &messages[0];
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    assert!(
        mail.contains(&format!("Subject: dbkeep: backup of app failed on {host}")),
        "{mail}"
    );
    assert!(
        mail.contains("To: ops@example.com, oncall@example.com"),
        "{mail}"
    );
    let id = sandbox.rows_for("app")[0]["id"].as_i64().unwrap();
    assert!(mail.contains(&format!("#{id}")), "{mail}");
    assert!(mail.contains("app.db"), "the error: {mail}");
    assert!(
        mail.contains(&format!("https://backups.example.com/admin/backups/{id}")),
        "{mail}"
    );
    assert!(
        sandbox
            .run(&["notify", "test"])
            .stdout
            .starts_with("ok      email smtp://127.0.0.1:")
    );
    assert_eq!(smtp.messages().len(), 2);

    // The SMTP server is gone: the backup succeeds all the same, and the failure is kept.
    smtp.stop();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config(&config("on = [\"success\"]\n"));
    sandbox.run(&["backup"]).assert_success();
    assert_eq!(sandbox.rows_for("app")[0]["status"], "success");
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    let (channel, event): (String, String) = conn
        .query_row("SELECT channel, event FROM failed_notifications", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(channel, format!("email smtp://127.0.0.1:{}", smtp.port));
    assert_eq!(event, "success");
}

#[test]
fn an_smtp_password_never_goes_in_clear_unless_smtp_url_says_tls_none() {
    let sandbox = Sandbox::new();
    let smtp = SmtpServer::start_offering_auth(sandbox.path());
    let config = |query: &str| {
        format!(
            "[notify.email]\nsmtp_url = \"smtp://127.0.0.1:{}{query}\"\nusername = \"dbkeep\"\n\
             password_env = \"SMTP_PW\"\nfrom = \"dbkeep@example.com\"\nto = [\"ops@example.com\"]\n\
             [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
            smtp.port
        )
    };
    let notify_test = || {
        run_cmd(
            sandbox
                .cmd()
                .args(["notify", "test"])
                .env("SMTP_PW", "hunter2"),
        )
    };
    // Without TLS (none asked for, or STARTTLS asked for but not offered) the password stays
    // here, and so does the mail it would have been sent with.
    for query in ["", "?tls=opportunistic"] {
        sandbox.write_config(&config(query));
        let run = notify_test();
        run.assert_code(1);
        assert!(
            run.stdout.contains(&format!("127.0.0.1:{}", smtp.port))
                && run.stdout.contains("without TLS")
                && run.stdout.contains("tls=none"),
            "{query}: {run:?}"
        );
        assert_eq!(
            smtp.logins(),
            Vec::<String>::new(),
            "{query}: the password went in clear"
        );
        assert!(smtp.messages().is_empty(), "{query}");
    }
    // `check` says so before the first mail fails.
    sandbox.write_config(&config(""));
    let check = sandbox.run(&["check"]);
    check.assert_success();
    assert!(
        check.stderr.contains("warning:")
            && check.stderr.contains("`smtp_url`")
            && check.stderr.contains("tls=required")
            && check.stderr.contains("tls=none"),
        "{check:?}"
    );
    // `tls=none` sends it in clear on purpose, and `check` still warns.
    sandbox.write_config(&config("?tls=none"));
    notify_test().assert_success();
    assert_eq!(smtp.logins(), ["dbkeep hunter2"]);
    assert_eq!(smtp.messages().len(), 1);
    let check = sandbox.run(&["check"]);
    check.assert_success();
    assert!(
        check.stderr.contains("warning:") && check.stderr.contains("in clear text"),
        "{check:?}"
    );
    // Without a login there is nothing to protect: no warning.
    sandbox.write_config(&format!(
        "[notify.email]\nsmtp_url = \"smtp://127.0.0.1:{}\"\nfrom = \"dbkeep@example.com\"\n\
         to = [\"ops@example.com\"]\n",
        smtp.port
    ));
    let check = sandbox.run(&["check"]);
    check.assert_success();
    assert!(!check.stderr.contains("warning"), "{check:?}");
}

#[test]
fn an_smtp_server_that_never_greets_is_named_with_the_timeout() {
    // The kernel takes the connection; nobody ever says a word on it.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "[notify.email]\nsmtp_url = \"smtp://127.0.0.1:{port}\"\nfrom = \"dbkeep@example.com\"\n\
         to = [\"ops@example.com\"]\n"
    ));
    let start = Instant::now();
    let run = sandbox.run(&["notify", "test"]);
    run.assert_code(1);
    assert!(start.elapsed() < Duration::from_secs(30), "{run:?}");
    let said = &run.stdout;
    assert!(
        said.contains(&format!("the SMTP server 127.0.0.1:{port}"))
            && said.contains("did not answer within 10s")
            && said.contains("greeting"),
        "{run:?}"
    );
    assert!(!said.contains("os error 11"), "{run:?}");
    drop(silent);
}

#[test]
fn a_stale_database_is_announced_once_per_episode_on_an_injected_clock() {
    let hooks = Receiver::start(Answer::Ok);
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config(&format!(
        "stale_after = \"1h\"\n[[notify.webhook]]\nurl = \"{}\"\non = [\"stale\"]\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
        hooks.url("/hook"),
    ));
    let runner =
        dbkeep::Runner::open(dbkeep::Config::load(&sandbox.config_path()).unwrap()).unwrap();
    let t0 = chrono::Utc::now();
    let hour = chrono::Duration::hours(1);
    let facts = dbkeep::verdict::FactsCache::default();
    let mut watch = dbkeep::service::stale::StaleWatch::new(t0);
    // Never backed up: stale an hour after watching began, announced once.
    watch.check(&runner, &facts, t0 + hour / 2).unwrap();
    watch.check(&runner, &facts, t0 + hour * 2).unwrap();
    watch.check(&runner, &facts, t0 + hour * 3).unwrap();
    // A restarted service (a new watch, whose start moved) remembers the episode.
    let mut restarted = dbkeep::service::stale::StaleWatch::new(t0 + hour * 3);
    restarted.check(&runner, &facts, t0 + hour * 3).unwrap();
    restarted.check(&runner, &facts, t0 + hour * 5).unwrap();
    runner.notifier().wait(Duration::from_secs(10));
    let seen = hooks.wait_for(1);
    assert_eq!(seen.len(), 1, "{seen:#?}");
    let first = seen[0].json();
    assert_eq!(first["event"], "stale");
    assert_eq!(first["database"], "app");
    assert!(
        first["error"]
            .as_str()
            .unwrap()
            .contains("no successful backup at all"),
        "{first:#}"
    );
    // A backup ends the episode; an hour later without another, a new one begins.
    sandbox.run(&["backup"]).assert_success();
    let now = chrono::Utc::now();
    watch.check(&runner, &facts, now + hour / 6).unwrap();
    watch.check(&runner, &facts, now + hour * 2).unwrap();
    watch.check(&runner, &facts, now + hour * 4).unwrap();
    let mut restarted = dbkeep::service::stale::StaleWatch::new(now + hour * 4);
    restarted.check(&runner, &facts, now + hour * 5).unwrap();
    runner.notifier().wait(Duration::from_secs(10));
    let seen = hooks.wait_for(2);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(hooks.seen.lock().unwrap().len(), 2, "{seen:#?}");
    let second = seen[1].json();
    assert_eq!(second["backup_id"], sandbox.rows_for("app")[0]["id"]);
    assert!(
        second["error"]
            .as_str()
            .unwrap()
            .contains("no successful backup since"),
        "{second:#}"
    );
}

#[test]
fn a_backup_under_half_the_size_of_the_one_before_is_suspicious() {
    let hooks = Receiver::start(Answer::Ok);
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("app.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (x TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
             INSERT INTO t SELECT hex(randomblob(100)) FROM n;",
        )
        .unwrap();
    }
    sandbox.write_config(&format!(
        "[[notify.webhook]]\nurl = \"{}\"\non = [\"suspicious\"]\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
        hooks.url("/hook"),
    ));
    sandbox.run(&["backup"]).assert_success();
    // A table emptied by mistake: the next backup is a fraction of the size.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DELETE FROM t; VACUUM;")
        .unwrap();
    sandbox.run(&["backup"]).assert_success();
    sandbox.run(&["backup"]).assert_success();
    let seen = hooks.wait_for(1);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        hooks.seen.lock().unwrap().len(),
        1,
        "only the shrunken one: {seen:#?}"
    );
    let body = seen[0].json();
    assert_eq!(body["event"], "suspicious");
    assert_eq!(body["status"], "success");
    assert!(
        body["error"].as_str().unwrap().contains("less than half"),
        "{body:#}"
    );
}

#[test]
fn slack_and_discord_get_their_own_message_shapes() {
    let hooks = Receiver::start(Answer::Ok);
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "[[notify.webhook]]\nurl = \"{}\"\nformat = \"slack\"\n\
         [[notify.webhook]]\nurl = \"{}\"\nformat = \"discord\"\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
        hooks.url("/slack"),
        hooks.url("/discord"),
    ));
    let run = sandbox.run(&["notify", "test"]);
    run.assert_success();
    assert_eq!(run.stdout.matches("ok      webhook ").count(), 2, "{run:?}");
    let seen = hooks.wait_for(2);
    let body = |path: &str| seen.iter().find(|r| r.path == path).unwrap().json();
    let slack = body("/slack");
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .starts_with("dbkeep: backup of - is a test message"),
        "{slack:#}"
    );
    assert_eq!(slack.as_object().unwrap().len(), 1, "{slack:#}");
    let discord = body("/discord");
    assert_eq!(discord["content"], slack["text"], "{discord:#}");
}

/// `/metrics` on `port` (`metrics_listen`), once the service answers there.
fn metrics_when_up(port: u16) -> String {
    let start = Instant::now();
    loop {
        if let Ok(r) = crate::http::http_get(port, "/metrics", None) {
            return r.text();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no /metrics");
        std::thread::sleep(Duration::from_millis(100));
    }
}
