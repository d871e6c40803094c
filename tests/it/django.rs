//! dbkeep inside a Django project (`python/dbkeep/django/`): the sample project under
//! `tests/django_project`, with the built wheel, Django, gunicorn and psycopg installed into a
//! fresh virtualenv (offline, from `target/wheelhouse`, which `scripts/test.sh` fills).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::browser::{Guard, alive, free_port, signal};
use crate::common::*;
use crate::python_package::{build_wheel, venv_with};

/// The sample project.
fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/django_project")
}

/// One virtualenv for the run's Django tests, made fresh: the wheel built from this tree,
/// Django (the LTS), gunicorn and psycopg, nothing from the network.
pub(crate) fn django_venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let wheelhouse = root.join("target/wheelhouse");
        assert!(
            wheelhouse.join(".requirements").is_file(),
            "{} is missing: run the tests with scripts/test.sh, which downloads Django, gunicorn \
             and psycopg into it",
            wheelhouse.display()
        );
        let base = root.join("target/it-django");
        fs::create_dir_all(&base).unwrap();
        // Those of earlier runs whose process is gone.
        for name in file_names(&base) {
            if let Some(pid) = name
                .strip_prefix("run-")
                .and_then(|p| p.parse::<u32>().ok())
                && !alive(pid)
            {
                let _ = fs::remove_dir_all(base.join(&name));
            }
        }
        let dir = base.join(format!("run-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let wheel = build_wheel(&dir.join("wheels"));
        let venv = dir.join("venv");
        let requirements = fs::read_to_string(wheelhouse.join(".requirements")).unwrap();
        let mut install = vec![
            "--find-links".as_ref(),
            wheelhouse.as_os_str(),
            wheel.as_os_str(),
        ];
        install.extend(requirements.split_whitespace().map(std::ffi::OsStr::new));
        venv_with(&venv, &install);
        venv
    })
}

/// The database a project variant uses.
pub(crate) enum Engine {
    Sqlite,
    Postgres(String),
}

/// The sample project with its own state folder (SQLite file, backups, dbkeep's files).
pub(crate) struct Project {
    pub(crate) state: tempfile::TempDir,
    pub(crate) venv: &'static Path,
    env: Vec<(String, String)>,
}

impl Project {
    pub(crate) fn new(engine: Engine, schedule: Option<&str>) -> Project {
        let venv = django_venv();
        let state = tempfile::Builder::new()
            .prefix("dbkeep-it-django-")
            .tempdir()
            .unwrap();
        let mut env = vec![
            (
                "DBKEEP_TEST_STATE".to_string(),
                state.path().display().to_string(),
            ),
            ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
            ("PYTHONUNBUFFERED".into(), "1".into()),
            ("NO_COLOR".into(), "1".into()),
        ];
        if let Engine::Postgres(name) = &engine {
            env.push(("DBKEEP_TEST_ENGINE".into(), "postgres".into()));
            env.push(("DBKEEP_TEST_PG_NAME".into(), name.clone()));
        }
        if let Some(s) = schedule {
            env.push(("DBKEEP_TEST_SCHEDULE".into(), s.into()));
        }
        Project { state, venv, env }
    }

    pub(crate) fn with(mut self, name: &str, value: &str) -> Project {
        self.env.push((name.into(), value.into()));
        self
    }

    fn apply(&self, cmd: &mut StdCommand) {
        for var in SCRUBBED_ENV
            .iter()
            .chain(["PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"].iter())
        {
            cmd.env_remove(var);
        }
        cmd.current_dir(project_dir()).env(
            "PATH",
            format!(
                "{}:{}",
                self.venv.join("bin").display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
    }

    /// `python manage.py ARGS`.
    pub(crate) fn manage(&self, args: &[&str]) -> Run {
        let mut cmd = StdCommand::new(self.venv.join("bin/python"));
        cmd.arg("manage.py").args(args);
        self.apply(&mut cmd);
        let mut cmd = assert_cmd::Command::from_std(cmd);
        cmd.timeout(Duration::from_secs(300));
        run_cmd(&mut cmd)
    }

    /// `python -c CODE` in the project, Django set up.
    pub(crate) fn python(&self, code: &str) -> Run {
        let mut cmd = StdCommand::new(self.venv.join("bin/python"));
        cmd.arg("-c")
            .arg(format!("import django; django.setup()\n{code}"))
            .env("DJANGO_SETTINGS_MODULE", "site_config.settings");
        self.apply(&mut cmd);
        run_cmd(&mut assert_cmd::Command::from_std(cmd))
    }

    /// A command of the virtualenv (gunicorn) with the project's environment.
    pub(crate) fn venv_command(&self, program: &str) -> StdCommand {
        let mut cmd = StdCommand::new(self.venv.join("bin").join(program));
        self.apply(&mut cmd);
        cmd
    }

    pub(crate) fn backup_dir(&self) -> PathBuf {
        self.state.path().join("backups")
    }

    /// The configuration dbkeep.django wrote.
    pub(crate) fn config_path(&self) -> PathBuf {
        self.backup_dir().join(".dbkeep/dbkeep.toml")
    }

    pub(crate) fn catalog(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.backup_dir().join(".dbkeep/catalog.sqlite3")).unwrap()
    }

    /// `dbkeep --config <the written file> list --json`, run directly.
    fn dbkeep_list(&self) -> Vec<Value> {
        let mut cmd = StdCommand::new(self.venv.join("bin/dbkeep"));
        cmd.arg("--config")
            .arg(self.config_path())
            .args(["list", "--json"]);
        self.apply(&mut cmd);
        let run = run_cmd(&mut assert_cmd::Command::from_std(cmd));
        run.assert_success();
        parse_rows(&run.stdout)
    }

    /// The processes running `dbkeep serve` for this project.
    pub(crate) fn serve_pids(&self) -> Vec<u32> {
        let config = self.config_path().display().to_string();
        let mut found = Vec::new();
        for name in file_names(Path::new("/proc")) {
            let Ok(pid) = name.parse::<u32>() else {
                continue;
            };
            let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let args: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if args.contains(&config) && args.iter().any(|a| a == "serve") && alive(pid) {
                found.push(pid);
            }
        }
        found
    }
}

/// Waits up to `limit` for `check` to hold.
#[track_caller]
fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every fire that ran, with its backup, and the scheduled backups, from the catalog.
fn fires_and_backups(p: &Project) -> (Vec<(String, Option<i64>)>, Vec<i64>) {
    let conn = p.catalog();
    let fires = conn
        .prepare("SELECT planned_at, backup_id FROM fires WHERE outcome IN ('ran', 'running') ORDER BY planned_at")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap_or_default();
    let backups = conn
        .prepare("SELECT id FROM backups WHERE trigger = 'scheduled' ORDER BY id")
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap_or_default();
    (fires, backups)
}

#[test]
fn under_gunicorn_with_three_workers_one_serve_backs_up_every_fire_once() {
    gunicorn_runs_one_serve(&Project::new(Engine::Sqlite, Some("*/2 * * * * *")));
}

#[test]
fn under_gunicorn_a_postgresql_project_is_backed_up_every_fire_once() {
    let db = PgDb::create("django_gunicorn");
    gunicorn_runs_one_serve(&Project::new(
        Engine::Postgres(db.name.clone()),
        Some("*/2 * * * * *"),
    ));
}

/// gunicorn with three workers: `check` passes, `migrate` and `shell` start nothing; then one
/// `dbkeep serve` backs up every fire once, is started again when killed, and stops with
/// gunicorn.
fn gunicorn_runs_one_serve(p: &Project) {
    let run = p.manage(&["check"]);
    run.assert_success();
    assert!(
        run.all_output()
            .contains("System check identified no issues"),
        "{run:?}"
    );
    p.manage(&["migrate", "--noinput"]).assert_success();
    p.manage(&["shell", "-c", "print('no scheduler here')"])
        .assert_success();
    assert!(
        p.serve_pids().is_empty(),
        "a management command started dbkeep serve"
    );
    assert!(
        !p.backup_dir().join(".dbkeep/catalog.sqlite3").exists(),
        "a management command ran backups"
    );

    let logs = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = p.venv_command("gunicorn");
    cmd.args(["--workers", "3", "--bind"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--graceful-timeout", "20", "site_config.wsgi:application"]);
    let mut gunicorn = Guard::spawn("gunicorn", cmd, logs.path());
    let started = Instant::now();
    while p.serve_pids().is_empty() {
        gunicorn.assert_running();
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no dbkeep serve within 30 s\n{}",
            gunicorn.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Several fires: never more than one serve, and one backup per fire.
    let watch = Instant::now();
    let first = p.serve_pids();
    while watch.elapsed() < Duration::from_secs(9) {
        let now = p.serve_pids();
        assert_eq!(
            now.len(),
            1,
            "serve processes: {now:?}\n{}",
            gunicorn.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(p.serve_pids(), first, "the first serve kept running");
    let cmdline = fs::read(format!("/proc/{}/cmdline", first[0])).unwrap();
    assert_absent_bytes(&cmdline, "django-db-password", "serve's command line");
    wait_until(Duration::from_secs(20), "three fires ran", || {
        fires_and_backups(p)
            .0
            .iter()
            .filter(|(_, b)| b.is_some())
            .count()
            >= 3
    });
    let (fires, backups) = fires_and_backups(p);
    let ran: Vec<i64> = fires.iter().filter_map(|(_, b)| *b).collect();
    let mut distinct = ran.clone();
    distinct.dedup();
    assert_eq!(ran, distinct, "two fires share a backup: {fires:?}");
    assert_eq!(
        ran.len(),
        backups.len(),
        "scheduled backups {backups:?} against fires {fires:?}"
    );
    assert!(
        backups.iter().all(|id| ran.contains(id)),
        "{backups:?} {fires:?}"
    );

    // Its serve killed: started again, and still only one.
    let old = first[0];
    signal("-KILL", [old]);
    wait_until(
        Duration::from_secs(20),
        "dbkeep serve started again",
        || {
            let now = p.serve_pids();
            now.len() == 1 && now[0] != old
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(p.serve_pids().len(), 1, "{}", gunicorn.logs());

    // gunicorn stopped: serve stops with it.
    let master = gunicorn.child.id();
    signal("-TERM", [master]);
    wait_until(Duration::from_secs(40), "gunicorn stopped", || {
        matches!(gunicorn.child.try_wait(), Ok(Some(_)))
    });
    wait_until(
        Duration::from_secs(10),
        "dbkeep serve stopped with gunicorn",
        || p.serve_pids().is_empty(),
    );
}

#[test]
fn management_commands_back_up_restore_verify_and_list_as_dbkeep_does() {
    let db = PgDb::create("django");
    db.psql("CREATE TABLE notes (id serial PRIMARY KEY, body text); INSERT INTO notes (body) SELECT 'note ' || g FROM generate_series(1, 50) g;");
    let p = Project::new(Engine::Postgres(db.name.clone()), None);
    p.manage(&["check"]).assert_success();
    p.manage(&["migrate", "--noinput"]).assert_success();

    // As the original design's command: keep everything with --no-cleanup...
    // (One: a prune that deletes more than half of a database's backups under a policy
    // that never pruned it is held back by the guard rail.)
    let run = p.manage(&["backup_database", "--retention-days", "0", "--no-cleanup"]);
    run.assert_success();
    let rows = p.dbkeep_list();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert!(
        rows.iter()
            .all(|r| r["status"] == "success" && r["pruned_at"].is_null()),
        "{rows:#?}"
    );
    let files: Vec<PathBuf> = rows
        .iter()
        .map(|r| assert_success_row(r, "default", "postgres"))
        .collect();
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("postgres_backup_") && name.ends_with(".sql.gz"),
            "{name}"
        );
        assert!(f.is_file());
    }
    // ...and prune by --retention-days without it: only the newest (keep_last) stays.
    p.manage(&["backup_database", "--retention-days", "0"])
        .assert_success();
    let rows = p.dbkeep_list();
    assert_eq!(rows.len(), 2);
    assert!(
        rows[0]["pruned_at"].is_null(),
        "the newest is kept: {rows:#?}"
    );
    assert!(
        rows[1..].iter().all(|r| !r["pruned_at"].is_null()),
        "{rows:#?}"
    );
    assert!(files.iter().all(|f| !f.exists()), "pruned files remain");

    // list_backups --json is dbkeep list --json.
    let run = p.manage(&["list_backups", "--json"]);
    run.assert_success();
    assert_eq!(parse_rows(&run.stdout), rows);
    let run = p.manage(&["list_backups"]);
    run.assert_success();
    assert!(
        run.stdout.contains("default") && run.stdout.contains("success"),
        "{run:?}"
    );

    // The password went by environment only.
    let password = "django-db-password-not-on-any-command-line";
    let config = fs::read_to_string(p.config_path()).unwrap();
    assert_absent(&config, password, "the written configuration");
    assert!(
        config.contains("password_env = \"DBKEEP_DJANGO_PASSWORD_DEFAULT\""),
        "{config}"
    );
    assert_eq!(mode_of(&p.config_path()) & 0o777, 0o600);
    assert_eq!(mode_of(&p.backup_dir().join(".dbkeep")) & 0o777, 0o700);
    let catalog = fs::read(p.backup_dir().join(".dbkeep/catalog.sqlite3")).unwrap();
    assert_absent_bytes(&catalog, password, "the catalog");
    assert_absent(&run.all_output(), password, "list_backups");

    // verify_backups restores the newest into a throwaway database.
    let run = p.manage(&["verify_backups"]);
    run.assert_success();
    assert!(run.all_output().contains("default"), "{run:?}");

    // restore_database into a new database, with the standard tools underneath.
    let target = PgDb::create("django_restored");
    target.psql("SELECT 1");
    let url = target.url();
    target.psql(&format!("DROP DATABASE IF EXISTS {}_x", target.name));
    let run = p.manage(&[
        "restore_database",
        "--latest",
        "--database",
        "default",
        "--to",
        &url,
        "--force",
    ]);
    run.assert_success();
    assert_eq!(target.scalar("SELECT count(*) FROM notes"), "50");
    // The audit log names the restore as Django's, with the Unix user beside it.
    let (actor, outcome, detail): (String, String, String) = p
        .catalog()
        .query_row(
            "SELECT actor, outcome, detail FROM audit_log WHERE action = 'restore' ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (actor.as_str(), outcome.as_str()),
        ("django:manage.py", "ok")
    );
    assert!(
        detail.contains("via cli:") && detail.contains("to "),
        "{detail}"
    );
    // Into its own database, which has tables: refused without --force.
    let run = p.manage(&["restore_database", "--latest", "--database", "default"]);
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(run.all_output().contains("--force"), "{run:?}");

    // A backup that fails: exit code 1, a failed row with the reason.
    let broken = Project::new(Engine::Postgres(format!("{}_missing", db.name)), None);
    let run = broken.manage(&["backup_database"]);
    run.assert_code(1);
    let rows = broken.dbkeep_list();
    assert_failed_row(&rows[0], "default");
}

#[test]
fn bad_settings_are_reported_by_manage_py_check_with_the_settings_name() {
    for (bad, setting, says) in [
        (
            "engine",
            "DATABASES['legacy']['ENGINE']",
            "cannot back up databases of the engine",
        ),
        ("backup_dir", "BACKUP_DIR", "does not exist"),
        (
            "cron",
            "DBKEEP['databases']['default']['schedules']",
            "not a valid cron expression",
        ),
        (
            "default_cron",
            "DBKEEP['schedules']",
            "not a valid cron expression",
        ),
        ("retention", "BACKUP_RETENTION_DAYS", "whole number of days"),
    ] {
        let p = Project::new(Engine::Sqlite, None).with("DBKEEP_TEST_BAD", bad);
        let run = p.manage(&["check"]);
        assert_ne!(run.code, Some(0), "{bad}: {run:?}");
        let out = run.all_output();
        assert!(
            out.contains(setting),
            "{bad}: the setting is not named\n{out}"
        );
        assert!(out.contains(says), "{bad}: {out}");
        assert!(!out.contains("Traceback"), "{bad}: {out}");
        // The commands refuse too, and say why.
        let run = p.manage(&["backup_database"]);
        assert_ne!(run.code, Some(0), "{bad}: {run:?}");
        assert!(!run.all_output().contains("Traceback"), "{bad}: {run:?}");
    }
}

#[test]
fn the_scheduler_starts_only_in_processes_that_serve_the_site() {
    let p = Project::new(Engine::Sqlite, None).with("DBKEEP_AUTOSTART", "");
    let run = p.python(
        "from dbkeep.django.supervisor import is_web_server as w\n\
         cases = [\n\
           (['manage.py', 'runserver'], {}),\n\
           (['manage.py', 'runserver'], {'RUN_MAIN': 'true'}),\n\
           (['manage.py', 'runserver', '--noreload'], {}),\n\
           (['/x/django/__main__.py', 'runserver', '--noreload'], {}),\n\
           (['manage.py', 'migrate'], {}),\n\
           (['manage.py', 'shell'], {}),\n\
           (['manage.py', 'test'], {}),\n\
           (['/v/bin/gunicorn', 'site.wsgi'], {}),\n\
           (['/v/bin/uvicorn', 'site.asgi:application'], {}),\n\
           (['manage.py', 'migrate'], {'DBKEEP_AUTOSTART': '1'}),\n\
           (['/v/bin/gunicorn', 'site.wsgi'], {'DBKEEP_AUTOSTART': '0'}),\n\
         ]\n\
         print(' '.join('yes' if w(a, e) else 'no' for a, e in cases))",
    );
    run.assert_success();
    assert_eq!(
        run.stdout.trim(),
        "no yes yes yes no no no yes yes yes no",
        "runserver's reloader, management commands and DBKEEP_AUTOSTART=0 start nothing: {run:?}"
    );
}
