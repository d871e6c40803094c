//! What only the PostgreSQL catalog has to show: migrations under a lock, a schema that matches
//! SQLite's, the same records as SQLite, its connection's TLS and its error messages.

use std::collections::BTreeSet;
use std::sync::Barrier;

use super::harness::{Harness, Postgres, Shared, Sqlite, TestDatabase, connect, server};
use super::{at, begin, good, verification};
use crate::postgres_connect::{MIGRATIONS, TRUSTED_FOR};
use dbkeep_config::config::{Secret, ServerTarget};
use dbkeep_model::catalog::{Catalog, ListFilter, Outcome, VerifyLevel};
use dbkeep_model::copies::{Copy, CopyState};

#[test]
fn instances_opening_a_new_catalog_at_once_migrate_it_once() {
    let db = TestDatabase::create();
    let barrier = Barrier::new(4);
    let opened = std::thread::scope(|s| {
        let opens: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    db.open().map(drop)
                })
            })
            .collect();
        opens
            .into_iter()
            .map(|o| o.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert!(opened.iter().all(Result::is_ok), "{opened:?}");
    let rows = db
        .client()
        .query(
            "SELECT version FROM dbkeep_schema_migrations ORDER BY version",
            &[],
        )
        .unwrap();
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    let known: Vec<i32> = MIGRATIONS.iter().map(|m| m.0).collect();
    assert_eq!(versions, known);
}

#[test]
fn a_catalog_whose_schema_is_newer_than_this_build_is_refused() {
    let db = TestDatabase::create();
    drop(db.open().unwrap());
    db.client()
        .execute(
            "INSERT INTO dbkeep_schema_migrations (version) VALUES (999)",
            &[],
        )
        .unwrap();
    let e = db.open().err().expect("refused").to_string();
    assert!(e.contains(db.target.url.as_str()), "{e}");
    assert!(
        e.contains("schema is version 999, newer than this dbkeep knows"),
        "{e}"
    );
}

#[test]
fn migration_5_names_kept_notification_channels_by_host_never_by_path() {
    let db = TestDatabase::create();
    let mut client = db.client();
    client
        .batch_execute(
            "CREATE TABLE dbkeep_schema_migrations (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .unwrap();
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 < 5) {
        client.batch_execute(sql).unwrap();
        client
            .execute(
                "INSERT INTO dbkeep_schema_migrations (version) VALUES ($1)",
                &[version],
            )
            .unwrap();
    }
    for (before, _) in super::OLD_CHANNELS {
        client
            .execute(
                "INSERT INTO failed_notifications (at, channel, event, database, error)
                 VALUES (now(), $1, 'failure', 'app', 'http status: 500')",
                &[before],
            )
            .unwrap();
    }
    drop(db.open().unwrap());
    let channels: Vec<String> = client
        .query("SELECT channel FROM failed_notifications ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    super::assert_renamed(&channels);
}

#[test]
fn migration_6_leaves_every_older_row_unpinned_and_readable() {
    let db = TestDatabase::create();
    let mut client = db.client();
    client
        .batch_execute(
            "CREATE TABLE dbkeep_schema_migrations (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .unwrap();
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 < 6) {
        client.batch_execute(sql).unwrap();
        client
            .execute(
                "INSERT INTO dbkeep_schema_migrations (version) VALUES ($1)",
                &[version],
            )
            .unwrap();
    }
    client
        .batch_execute(
            "INSERT INTO backups (id, database, kind, status, trigger, file_name, path, size_bytes,
                 sha256, compression, started_at, finished_at, duration_ms, instance)
             VALUES (7, 'app', 'sqlite', 'success', 'manual', 'a.db', '/b/app/a.db', 10, 'ab',
                 'none', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z', 5, 'web-1')",
        )
        .unwrap();
    let catalog = db.open().unwrap();
    let old = catalog.get(7).unwrap().unwrap();
    assert_eq!((old.pinned, old.pin_note), (false, None));
    assert!(catalog.set_pin(7, true, Some("kept by hand")).unwrap());
    let listed = catalog.list(&ListFilter::default()).unwrap();
    assert_eq!(
        (
            listed.len(),
            listed[0].pinned,
            listed[0].pin_note.as_deref()
        ),
        (1, true, Some("kept by hand"))
    );
    assert_eq!(catalog.retention_marks().unwrap(), vec![]);
}

#[test]
fn the_schema_has_the_tables_and_columns_of_the_sqlite_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog.sqlite3");
    drop(crate::sqlite::SqliteCatalog::open(&file).unwrap());
    let conn = rusqlite::Connection::open(&file).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
        )
        .unwrap();
    let sqlite: BTreeSet<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let db = TestDatabase::create();
    drop(db.open().unwrap());
    let postgres: BTreeSet<(String, String)> = db
        .client()
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name <> 'dbkeep_schema_migrations'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(postgres, sqlite);
}

/// Everything a catalog tells about a few backups, in words.
fn transcript(c: &dyn Shared) -> String {
    let b1 = good(c, "app", "a1.db.gz", 0);
    let b2 = begin(c, "main", "m1.sql.gz", 5);
    c.fail(
        b2,
        "pg_dump exited with code 1",
        at("2026-12-01T00:00:09.0001Z"),
        4000,
    )
    .unwrap();
    let b3 = good(c, "app", "a2.db.gz.age", 10);
    c.set_table_rows(b1, &[("users".into(), 3), ("Orders".into(), 9)])
        .unwrap();
    c.record_verification(&verification(
        b1,
        VerifyLevel::Restore,
        true,
        "restored",
        60,
    ))
    .unwrap();
    let copies = c;
    for (store, uploaded) in [
        ("s3", Some(at("2026-12-01T00:01:00.999999Z"))),
        ("az", None),
    ] {
        copies
            .record_copy(&Copy {
                backup_id: b3,
                store: store.into(),
                key: "app/a2.db.gz.age".into(),
                size_bytes: uploaded.map(|_| 5),
                sha256: None,
                state: if uploaded.is_some() {
                    CopyState::Uploaded
                } else {
                    CopyState::Failed
                },
                error: uploaded.is_none().then(|| "refused".into()),
                uploaded_at: uploaded,
                pruned_at: None,
            })
            .unwrap();
    }
    c.mark_pruned(b1, at("2026-12-02T00:00:00.0005Z")).unwrap();
    assert!(c.set_pin(b3, true, Some("before the move")).unwrap());
    copies
        .mark_copies_pruned(&[(b3, "s3".into())], at("2026-12-03T00:00:00.0007Z"))
        .unwrap();
    c.set_retention_mark("app", "s3", "keep_last = 2", at("2026-12-03T00:00:00Z"))
        .unwrap();
    let planned = at("2026-12-01T00:00:00Z");
    let fire = c
        .claim_fire(
            "app",
            "0 0 * * *",
            planned,
            Outcome::Running,
            None,
            Some("web-1"),
        )
        .unwrap();
    c.finish_fire(
        fire.unwrap(),
        Outcome::Ran,
        Some(at("2026-12-01T00:00:00.0101Z")),
        Some(b1),
        None,
    )
    .unwrap();
    let list = serde_json::to_string_pretty(&c.list(&ListFilter::default()).unwrap()).unwrap();
    format!(
        "{list}\n{:#?}\n{:#?}\n{:#?}\n{:#?}\n{:#?}\n{:#?}\n{:#?}",
        c.fires("app", None, 10).unwrap(),
        c.verifications(b1).unwrap(),
        c.table_rows(b1).unwrap(),
        copies.copies(b3).unwrap(),
        copies.last_uploads().unwrap(),
        c.status_counts().unwrap(),
        c.retention_marks().unwrap(),
    )
}

#[test]
fn both_implementations_return_the_same_records() {
    let (sqlite, postgres) = (Sqlite::new(), Postgres::new());
    let (a, b) = (transcript(sqlite.catalog()), transcript(postgres.catalog()));
    assert_eq!(a, b);
    assert!(
        a.contains("\"started_at\": \"2026-12-01T00:00:03.123Z\""),
        "{a}"
    );
}

#[test]
fn errors_name_the_url_and_never_the_password() {
    let target = ServerTarget {
        url: url::Url::parse("postgres://dbkeep@127.0.0.1:1/catalog").unwrap(),
        password: Some(Secret::new("sekret-pw-4711")),
        password_env: None,
    };
    let e = crate::postgres::PostgresCatalog::open(&target)
        .err()
        .expect("nothing listens on port 1")
        .to_string();
    assert!(
        e.starts_with("catalog postgres://dbkeep@127.0.0.1:1/catalog: cannot connect: "),
        "{e}"
    );
    assert!(e.contains("refused"), "{e}");
    assert!(!e.contains("sekret"), "{e}");
}

/// Whether the connection of `client` is encrypted.
fn encrypted(client: &mut postgres::Client) -> bool {
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0)
}

/// A certificate authority made for this test, which signed no server's certificate.
const UNRELATED_AUTHORITY: &str = "-----BEGIN CERTIFICATE-----
MIIBvTCCAWOgAwIBAgIUMx+jawv3hJkJ305tZz+DuRdx3lUwCgYIKoZIzj0EAwIw
MzExMC8GA1UEAwwoZGJrZWVwIHRlc3QgYXV0aG9yaXR5IHRoYXQgc2lnbnMgbm90
aGluZzAgFw0yNjEyMDExMzEwNTNaGA8yMTI2MTEwNzEzMTA1M1owMzExMC8GA1UE
AwwoZGJrZWVwIHRlc3QgYXV0aG9yaXR5IHRoYXQgc2lnbnMgbm90aGluZzBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABKxsOwjBLe+C2GO2sOn7SBD/DM+9WHte99DA
ek8i8BAaLwjZ4JokPZJYdIgGMaHNbUcvcfY1ZtpfY1/82GUlmsijUzBRMB0GA1Ud
DgQWBBS69LmI/o5L74JOH4NHskqUR738kzAfBgNVHSMEGDAWgBS69LmI/o5L74JO
H4NHskqUR738kzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQCH
f23d7L7eJjWl2WfLZbm5zPSHGOFrRW9fdTwWEVh1hwIgE88TBi0Iiq2qexgX/zfM
kICipSh0xZaOcidFAxkwDl4=
-----END CERTIFICATE-----
";

fn with_query(query: &str) -> ServerTarget {
    let mut target = server();
    target.url.set_query(Some(query));
    target
}

#[test]
fn sslmode_is_honoured_with_rustls() {
    let mut plain = connect(&with_query("sslmode=disable"));
    assert!(!encrypted(&mut plain));
    let ssl_on = plain
        .query_one("SELECT current_setting('ssl') = 'on'", &[])
        .unwrap()
        .get::<_, bool>(0);
    let settings = |q: &str| crate::postgres_connect::settings(&with_query(q)).unwrap();
    let try_connect = |q: &str| crate::postgres_connect::connect(&settings(q));
    if ssl_on {
        assert!(encrypted(&mut try_connect("sslmode=require").unwrap()));
        assert!(
            encrypted(&mut try_connect("").unwrap()),
            "prefer, the default, encrypts"
        );
        // An authority that signed nothing: its certificate is refused by verify-ca, and by
        // require when sslrootcert names the authorities (as libpq does).
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, UNRELATED_AUTHORITY).unwrap();
        let ca: String =
            url::form_urlencoded::byte_serialize(ca.to_str().unwrap().as_bytes()).collect();
        for mode in ["verify-ca", "verify-full", "require"] {
            let e = try_connect(&format!("sslmode={mode}&sslrootcert={ca}"))
                .err()
                .expect("refused");
            assert!(
                e.contains("invalid peer certificate: UnknownIssuer"),
                "{mode}: {e}"
            );
        }
        // A certificate is for names, rarely for an IP address: verify-full refuses it then.
        let host_ip = with_query("sslmode=verify-full");
        if host_ip
            .url
            .host_str()
            .is_some_and(|h| h.parse::<std::net::IpAddr>().is_ok())
        {
            let e = try_connect("sslmode=verify-full").err().expect("refused");
            assert!(e.contains("invalid peer certificate"), "{e}");
        }
    } else {
        let e = try_connect("sslmode=require").err().expect("refused");
        assert!(e.contains("does not support TLS"), "{e}");
        assert!(
            !encrypted(&mut try_connect("").unwrap()),
            "prefer falls back"
        );
    }
}

#[test]
fn a_catalog_works_on_and_off_async_runtimes_and_is_dropped_on_one() {
    use std::sync::Arc;
    let db = TestDatabase::create();
    let list =
        |c: &dyn dbkeep_model::catalog::Catalog| c.list(&ListFilter::default()).unwrap().len();
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    multi.block_on(async {
        // Opened, used and dropped on the thread that runs the runtime: it blocks, as
        // SQLite's catalog does, and does not panic.
        let catalog: Arc<dyn dbkeep_model::catalog::Catalog> = Arc::new(db.open().unwrap());
        assert_eq!(list(catalog.as_ref()), 0);
        let c = Arc::clone(&catalog);
        let blocking = tokio::task::spawn_blocking(move || list(c.as_ref()));
        assert_eq!(blocking.await.unwrap(), 0);
        let c = Arc::clone(&catalog);
        let on_worker = tokio::spawn(async move { list(c.as_ref()) });
        assert_eq!(on_worker.await.unwrap(), 0);
        drop(catalog);
    });
    let single = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    single.block_on(async {
        let catalog = db.open().unwrap();
        good(&catalog, "app", "a1.db.gz", 0);
        assert_eq!(list(&catalog), 1);
    });
}

#[test]
fn a_connection_the_server_ended_is_replaced() {
    let h = Postgres::new();
    let c = h.catalog();
    let end_connections = || -> i64 {
        connect(&server())
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&h.database()],
            )
            .unwrap()
            .get(0)
    };
    good(c, "app", "a1.db.gz", 0);
    // Ended right after its last use: the pool hands it out unchecked, and the read that
    // finds it lost is sent again on a new connection.
    assert!(end_connections() >= 1, "the pool kept a connection");
    assert_eq!(c.list(&ListFilter::default()).unwrap().len(), 1);
    // Ended after it sat in the pool for a while: the pool checks it before handing it out,
    // so even a write (never sent twice) finds a working connection.
    std::thread::sleep(TRUSTED_FOR + std::time::Duration::from_millis(100));
    assert!(end_connections() >= 1, "the pool kept a connection");
    good(c, "app", "a2.db.gz", 1);
    assert_eq!(c.list(&ListFilter::default()).unwrap().len(), 2);
}

#[test]
fn the_audit_log_cannot_be_truncated() {
    let h = Postgres::new();
    let refused = h.try_tamper("TRUNCATE audit_log").unwrap_err();
    assert!(refused.contains("append-only"), "{refused}");
}
