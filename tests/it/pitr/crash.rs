//! Point-in-time recovery when pushes die: a push killed mid-segment, and a full archive
//! disk, each followed by a recovery that has every row.

use std::time::Duration;

use super::cluster::{self, Cluster, dbkeep, free_port};
use super::{archived, config_with, doctor_finding, mark, marked_cluster, restored_marks};
use crate::common::Sandbox;

/// The pid of the one child of `parent` (`runuser`'s command), if it has started.
fn child_of(parent: u32) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
fn a_push_killed_mid_segment_leaves_no_segment_and_the_retry_archives_it() {
    use std::io::Write as _;
    let (sandbox, cluster) = marked_cluster("");
    cluster.pgbench(&["-i", "-s", "1", "-q"]);
    dbkeep(&sandbox, &["backup", "--server", "pg"]).assert_success();
    mark(&cluster, 1);
    // The segment being written now: PostgreSQL archives it at the next switch. A push of
    // it is started first, from a pipe that holds half of it, and killed there.
    let segment = cluster.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    let fake = sandbox.path().join("fake");
    std::fs::create_dir_all(fake.join("global")).unwrap();
    std::fs::create_dir_all(fake.join("pg_wal")).unwrap();
    std::fs::copy(
        cluster.data.join("global/pg_control"),
        fake.join("global/pg_control"),
    )
    .unwrap();
    let pipe = fake.join("pg_wal").join(&segment);
    let made = std::process::Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .unwrap();
    assert!(made.success());
    cluster::own(&fake);
    let mut push = cluster::as_owner(std::path::Path::new(crate::common::bin_path()))
        .arg("--config")
        .arg(sandbox.config_path())
        .args(["wal", "push"])
        .arg(&pipe)
        .spawn()
        .unwrap();
    let half = std::fs::read(cluster.data.join("pg_wal").join(&segment)).unwrap();
    let mut writer = std::fs::OpenOptions::new().write(true).open(&pipe).unwrap();
    writer.write_all(&half[..half.len() / 2]).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let pid = child_of(push.id()).unwrap_or(push.id() as i32);
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = push.wait();
    drop(writer);
    let wal = sandbox.db_dir("pg").join("wal");
    assert!(
        !archived(&sandbox).iter().any(|f| f.starts_with(&segment)),
        "a killed push left a file under the segment's name: {:?}",
        archived(&sandbox)
    );
    assert!(
        wal.join(format!(".{segment}.zst.part")).exists(),
        "the killed push was writing its temporary: {:?}",
        archived(&sandbox)
    );

    // PostgreSQL's own push of the same segment replaces the half-written temporary.
    mark(&cluster, 2);
    cluster.archive_now();
    let files = archived(&sandbox);
    assert!(files.contains(&format!("{segment}.zst")), "{files:?}");
    assert!(!files.iter().any(|f| f.ends_with(".part")), "{files:?}");
    drop(cluster);
    let (marks, accounts) = restored_marks(&sandbox, "latest", "after_kill");
    assert_eq!((marks.as_str(), accounts.as_str()), ("1,2", "100000"));
}

/// A tmpfs mounted at a folder for the life of the guard.
struct Mounted(std::path::PathBuf);

impl Mounted {
    fn tmpfs(dir: &std::path::Path, size: &str) -> Mounted {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a small tmpfs needs root (as scripts/test.sh runs in CI): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Mounted(dir.to_path_buf())
    }

    /// KiB in use on it.
    fn used_kib(&self) -> u64 {
        let out = std::process::Command::new("df")
            .args(["--output=used", "-k"])
            .arg(&self.0)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap()
    }

    fn resize(&self, size: &str) {
        let out = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_archive_disk_fails_the_push_until_there_is_room_and_nothing_is_lost() {
    let sandbox = Sandbox::new();
    let port = free_port();
    config_with(&sandbox, "min_free_space = \"64KiB\"", port, "", "");
    let disk = Mounted::tmpfs(&sandbox.db_dir("pg").join("wal"), "64m");
    let cluster = Cluster::start(&sandbox, port, "30s");
    cluster.sql("CREATE TABLE marks (n int PRIMARY KEY)");
    dbkeep(&sandbox, &["backup", "--server", "pg"]).assert_success();
    // The disk now holds what is archived and a megabyte more: far less WAL than follows,
    // compressed or not.
    disk.resize(&format!("{}k", disk.used_kib() + 1024));
    cluster.pgbench(&["-i", "-s", "4", "-q"]);
    mark(&cluster, 1);
    cluster.sql("SELECT pg_switch_wal()");
    let started = std::time::Instant::now();
    loop {
        let failed: u64 = cluster
            .sql("SELECT failed_count FROM pg_stat_archiver")
            .parse()
            .unwrap();
        if failed > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no push failed on the full disk: {:?}",
            archived(&sandbox)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = std::fs::read_to_string(cluster.data.join("server.log")).unwrap();
    assert!(log.contains("archive command failed"), "{log}");
    assert!(
        !archived(&sandbox).iter().any(|f| f.ends_with(".part")),
        "a failed push leaves no temporary: {:?}",
        archived(&sandbox)
    );
    // The failing pushes are what status and doctor report, from the server's own count.
    let status = dbkeep(&sandbox, &["status"]);
    status.assert_code(1);
    assert!(
        status.stdout.contains("archive_command failed"),
        "{status:?}"
    );
    let (level, detail) = doctor_finding(&sandbox, "archiver");
    assert_eq!(level, "fail", "{detail}");
    // Room again: PostgreSQL's retries archive everything it kept.
    disk.resize("256m");
    mark(&cluster, 2);
    cluster.archive_now();
    drop(cluster);
    let (marks, accounts) = restored_marks(&sandbox, "latest", "after_full_disk");
    assert_eq!((marks.as_str(), accounts.as_str()), ("1,2", "400000"));
}
