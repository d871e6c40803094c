//! A private PostgreSQL cluster for the point-in-time tests: `initdb` of the installed
//! PostgreSQL into the sandbox, on a free port, archiving through the `dbkeep` under test.
//! PostgreSQL refuses to run as root, so as root the cluster and every `dbkeep` command that
//! touches its archive run as the `postgres` user, who then owns the sandbox.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::{Run, SCRUBBED_ENV, Sandbox, bin_path};

/// The installed PostgreSQL's server programs (`initdb`, `pg_ctl`, `pgbench`).
pub fn pg_bin() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    dirs.retain(|d| d.join("initdb").exists());
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop().expect(
        "PostgreSQL's server programs (initdb) are not installed: scripts/test.sh installs them",
    )
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `program` run as the cluster's owner (`postgres` when this is root), from `/`.
pub fn as_owner(program: &Path) -> Command {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.current_dir("/");
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

#[track_caller]
fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running private cluster; stopped when dropped.
pub struct Cluster {
    pub data: PathBuf,
    pub port: u16,
}

impl Cluster {
    /// A new cluster in `sandbox/pgdata`, archiving with `dbkeep --config <sandbox config>
    /// wal push %p` every `archive_timeout`.
    pub fn start(sandbox: &Sandbox, port: u16, archive_timeout: &str) -> Cluster {
        own(sandbox.path());
        let data = sandbox.path().join("pgdata");
        ok(
            as_owner(&pg_bin().join("initdb"))
                .args([
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "-D",
                ])
                .arg(&data)
                .output()
                .unwrap(),
            "initdb",
        );
        let command = format!(
            "'{}' --config '{}' wal push %p",
            bin_path(),
            sandbox.config_path().display()
        );
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             wal_level = replica\narchive_mode = on\narchive_command = '{}'\n\
             archive_timeout = '{archive_timeout}'\nmax_wal_senders = 4\n",
            sandbox.path().display(),
            command.replace('\'', "''")
        );
        let path = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&conf);
        std::fs::write(&path, text).unwrap();
        let cluster = Cluster { data, port };
        cluster.pg_ctl(&["-w", "start"]);
        cluster
    }

    fn pg_ctl(&self, args: &[&str]) -> String {
        let log = self.data.join("server.log");
        ok(
            as_owner(&pg_bin().join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(&log)
                .args(args)
                .output()
                .unwrap(),
            &format!("pg_ctl {args:?} (log: {})", log.display()),
        )
    }

    /// The server's answer to `sql` (`psql -tA`), trimmed.
    pub fn sql(&self, sql: &str) -> String {
        sql_at(self.port, sql)
    }

    /// Runs pgbench's TPC-B-like load for `seconds`.
    pub fn pgbench(&self, args: &[&str]) {
        ok(
            Command::new(pg_bin().join("pgbench"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .args(args)
                .arg("postgres")
                .output()
                .unwrap(),
            "pgbench",
        );
    }

    /// Switches to a new segment and waits until the one holding everything so far is
    /// archived.
    pub fn archive_now(&self) {
        let segment = self.sql("SELECT pg_walfile_name(pg_switch_wal())");
        let started = Instant::now();
        loop {
            let last = self.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver");
            if last.as_str() >= segment.as_str() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{segment} was not archived in a minute (last: {last}; failures: {})",
                self.sql("SELECT failed_count || ' ' || coalesce(last_failed_wal, '') FROM pg_stat_archiver")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_owner(&pg_bin().join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// `psql -tA -c SQL` against the server on `port`.
#[track_caller]
pub fn sql_at(port: u16, sql: &str) -> String {
    ok(
        Command::new(pg_bin().join("psql"))
            .args([
                "-X",
                "-tA",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .args(["-p", &port.to_string(), "-d", "postgres", "-c", sql])
            .output()
            .unwrap(),
        &format!("psql {sql}"),
    )
    .trim()
    .to_string()
}

/// Stops the server whose data directory is `data`, if one runs there.
pub fn stop_at(data: &Path) {
    let _ = as_owner(&pg_bin().join("pg_ctl"))
        .arg("-D")
        .arg(data)
        .args(["-m", "immediate", "stop"])
        .output();
}

/// Gives `dir` (and everything below it) to the cluster's owner.
pub fn own(dir: &Path) {
    if is_root() {
        let out = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "chown: {out:?}");
    }
}

/// `dbkeep --config <sandbox config> ARGS` as the cluster's owner.
pub fn dbkeep(sandbox: &Sandbox, args: &[&str]) -> Run {
    let out = as_owner(Path::new(bin_path()))
        .arg("--config")
        .arg(sandbox.config_path())
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
