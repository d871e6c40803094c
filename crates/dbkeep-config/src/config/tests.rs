#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use super::*;
use dbkeep_model::discovery::{DiscoveredDatabase, DiscoveryState};

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/dbkeep/dbkeep.toml"), text, &|_| None)
}

fn parse_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/dbkeep/dbkeep.toml"), text, &|name| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
}

#[test]
fn defaults_resolve_against_the_config_folder() {
    let c = parse("[[databases]]\nname = \"app\"\nurl = \"sqlite:data/app.db\"\n").unwrap();
    assert_eq!(c.backup_dir, Path::new("/etc/dbkeep/backups"));
    assert_eq!(
        c.catalog.sqlite_file(),
        Some(Path::new("/etc/dbkeep/dbkeep.sqlite3"))
    );
    assert_eq!(
        c.retention("app", &Destination::Local, None),
        Retention::default()
    );
    let db = &c.databases[0];
    assert!(
        matches!(&db.target, Target::Sqlite { path } if path == Path::new("/etc/dbkeep/data/app.db"))
    );
    assert_eq!(db.compression, Compression::None);
}

#[test]
fn postgres_defaults_to_gzip_and_keeps_the_password_out_of_the_url() {
    let c = parse("[[databases]]\nname = \"pg\"\nurl = \"postgres://app:s3cr%40t@db:5432/app?sslmode=require\"\n").unwrap();
    let db = &c.databases[0];
    assert_eq!(db.compression, Compression::Gzip);
    let Target::Postgres(pg) = &db.target else {
        panic!("not postgres")
    };
    assert_eq!(
        pg.url.as_str(),
        "postgres://app@db:5432/app?sslmode=require"
    );
    assert_eq!(pg.password.as_ref().unwrap().expose(), "s3cr@t");
    let shown = format!("{c:?} {}", db.target.display());
    assert!(!shown.contains("s3cr"), "password leaked: {shown}");
}

#[test]
fn a_password_parameter_leaves_the_url_too() {
    let c = parse("[[databases]]\nname = \"pg\"\nurl = \"postgres://app:userinfo@db/app?sslmode=require&password=s3cr%26t&application_name=x\"\n").unwrap();
    let Target::Postgres(pg) = &c.databases[0].target else {
        panic!("not postgres")
    };
    assert_eq!(
        pg.url.as_str(),
        "postgres://app@db/app?sslmode=require&application_name=x"
    );
    assert_eq!(pg.password.as_ref().unwrap().expose(), "s3cr&t");
    let c = parse("[[databases]]\nname = \"pg\"\nurl = \"postgres://app@db/app?password=only\"\n")
        .unwrap();
    let Target::Postgres(pg) = &c.databases[0].target else {
        panic!("not postgres")
    };
    assert_eq!(pg.url.as_str(), "postgres://app@db/app");
    assert_eq!(pg.password.as_ref().unwrap().expose(), "only");
    // Other parameters pass through as written: libpq reads `%20`, and a `+` is a plus.
    let c = parse("[[databases]]\nname = \"pg\"\nurl = \"postgres://app@db/app?application_name=my%20app&options=-c%20search_path%3Dx&password=a+b%2Bc\"\n").unwrap();
    let Target::Postgres(pg) = &c.databases[0].target else {
        panic!("not postgres")
    };
    assert_eq!(
        pg.url.as_str(),
        "postgres://app@db/app?application_name=my%20app&options=-c%20search_path%3Dx"
    );
    assert_eq!(pg.password.as_ref().unwrap().expose(), "a+b+c");
    let err = parse(
        "[[databases]]\nname = \"pg\"\nurl = \"postgres://app@db/app?sslpassword=hunter2\"\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("sslpassword"), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let shown = format!("{c:?} {}", c.databases[0].target.display());
    assert!(!shown.contains("only"), "password leaked: {shown}");
}

#[test]
fn environment_overrides_the_file() {
    let c = parse_env(
        "backup_dir = \"b\"\nretention_days = 3\n",
        &[
            ("DBKEEP_BACKUP_DIR", "/srv/backups"),
            ("DBKEEP_RETENTION_DAYS", "7"),
        ],
    )
    .unwrap();
    assert_eq!(c.backup_dir, Path::new("/srv/backups"));
    assert_eq!(c.retention("x", &Destination::Local, None).within_days, 7);
    let err = parse_env("", &[("DBKEEP_RETENTION_DAYS", "week")]).unwrap_err();
    assert!(err.to_string().contains("DBKEEP_RETENTION_DAYS"), "{err}");
    for huge in ["4294967295", "100000000", "36501"] {
        let err = parse_env("", &[("DBKEEP_RETENTION_DAYS", huge)]).unwrap_err();
        assert!(err.to_string().contains("from 0 to 36500"), "{err}");
    }
}

#[test]
fn service_settings_have_defaults_and_parse_durations() {
    let c = parse("[[databases]]\nname = \"a\"\nurl = \"sqlite:a.db\"\n").unwrap();
    let s = &c.service;
    assert_eq!(s.misfire_grace.as_secs(), 3600);
    assert_eq!(s.backup_timeout.as_secs(), 6 * 3600);
    assert_eq!(s.stall_timeout.as_secs(), 600);
    assert_eq!(s.shutdown_grace.as_secs(), 30);
    assert_eq!(s.max_concurrent_backups, 2);
    assert_eq!(c.databases[0].schedules.len(), 1);
    assert_eq!(c.databases[0].schedules[0].expr, "0 0 * * *");
    let c = parse("timezone = \"America/New_York\"\nshutdown_grace = \"1m 30s\"\nmax_concurrent_backups = 4\n").unwrap();
    assert_eq!(c.service.timezone, chrono_tz::America::New_York);
    assert_eq!(c.service.shutdown_grace.as_secs(), 90);
    assert_eq!(c.service.max_concurrent_backups, 4);
}

#[test]
fn schedules_accept_common_cron_forms() {
    let c = parse(
        "[[databases]]\nname = \"a\"\nurl = \"sqlite:a.db\"\n\
         schedules = [\"0 0 * * *\", \"0 */6 * * *\", \"0 0 * * sun\", \"*/15 * * * * *\", \"@weekly\", \"@hourly\"]\n",
    )
    .unwrap();
    assert_eq!(c.databases[0].schedules.len(), 6);
}

/// Each bad configuration, the line it is reported at, and words its message must contain.
#[test]
fn bad_configs_name_the_key_the_line_and_the_fix() {
    let db = "[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n";
    let cases: &[(&str, String, Option<usize>, &[&str])] = &[
        (
            "unknown top-level key",
            "retention = 3\n".into(),
            Some(1),
            &["unknown field", "retention", "retention_days"],
        ),
        (
            "unknown database key",
            format!("{db}passwd = \"x\"\n"),
            Some(4),
            &["unknown field", "passwd", "password_env"],
        ),
        (
            "wrong type",
            "retention_days = \"ten\"\n".into(),
            Some(1),
            &["retention_days", "invalid type", "whole number"],
        ),
        (
            "negative number",
            "retention_days = -1\n".into(),
            Some(1),
            &["invalid value"],
        ),
        (
            "duplicate name",
            format!("{db}{db}"),
            Some(5),
            &["duplicate", "app"],
        ),
        (
            "bad name",
            "[[databases]]\nname = \"my app\"\nurl = \"sqlite:a.db\"\n".into(),
            Some(2),
            &["name", "my app", "letters, digits"],
        ),
        (
            "unsupported scheme",
            "[[databases]]\nname = \"m\"\nurl = \"oracle://root@localhost/app\"\n".into(),
            Some(3),
            &["url", "oracle", "postgres://", "mysql://"],
        ),
        (
            "not a url",
            "[[databases]]\nname = \"m\"\nurl = \"localhost\"\n".into(),
            Some(3),
            &["url", "sqlite:PATH"],
        ),
        (
            "no database in url",
            "[[databases]]\nname = \"m\"\nurl = \"postgres://u@h:5432\"\n".into(),
            Some(3),
            &["url", "names no database"],
        ),
        (
            "missing url",
            "[[databases]]\nname = \"m\"\n".into(),
            Some(1),
            &["missing field", "url"],
        ),
        (
            "bad compression",
            format!("{db}compression = \"rar\"\n"),
            Some(4),
            &["rar", "gzip", "zstd", "none"],
        ),
        (
            "bad cron",
            format!("{db}schedules = [\"61 * * * *\"]\n"),
            Some(4),
            &["schedules", "61 * * * *", "cron"],
        ),
        (
            "keep_last zero",
            "keep_last = 0\n".into(),
            Some(1),
            &["keep_last", "from 1 to", "never pruned"],
        ),
        (
            "password_env on sqlite",
            format!("{db}password_env = \"PW\"\n"),
            Some(4),
            &["password_env", "PostgreSQL"],
        ),
        (
            "toml syntax",
            "backup_dir = \n".into(),
            Some(1),
            &["backup_dir"],
        ),
        (
            "bad duration",
            "stall_timeout = \"ten minutes\"\n".into(),
            Some(1),
            &["stall_timeout", "ten minutes", "10m"],
        ),
        (
            "zero duration",
            "backup_timeout = \"0s\"\n".into(),
            Some(1),
            &["backup_timeout", "6h"],
        ),
        (
            "bad timezone",
            "timezone = \"Mars/Olympus\"\n".into(),
            Some(1),
            &["timezone", "Mars/Olympus", "Europe/Berlin"],
        ),
        (
            "no concurrency",
            "max_concurrent_backups = 0\n".into(),
            Some(1),
            &["max_concurrent_backups", "from 1 to 64"],
        ),
        (
            "huge retention",
            "retention_days = 100000000\n".into(),
            Some(1),
            &["retention_days", "100000000", "from 0 to 36500"],
        ),
        (
            "largest u32 retention",
            "retention_days = 4294967295\n".into(),
            Some(1),
            &["retention_days", "out of range"],
        ),
        (
            "retention past u32",
            "retention_days = 4294967296\n".into(),
            Some(1),
            &["retention_days", "whole number"],
        ),
        (
            "negative calendar rule",
            format!("{db}keep_daily = -7\n"),
            Some(4),
            &["keep_daily", "whole number"],
        ),
        (
            "huge calendar rule",
            "keep_monthly = 2000000\n".into(),
            Some(1),
            &["keep_monthly", "2000000", "from 0 to 1000000"],
        ),
        (
            "misspelt calendar rule",
            format!("{db}keep_dayly = 7\n"),
            Some(4),
            &["unknown field", "keep_dayly", "keep_daily"],
        ),
        (
            "calendar rule of an offsite out of range",
            format!("{db}[[offsite]]\nname = \"s3\"\nurl = \"/mnt/b\"\nkeep_last = 0\n"),
            Some(7),
            &["keep_last", "of offsite `s3`", "from 1 to"],
        ),
        (
            "a policy for a destination that does not exist",
            format!("{db}[databases.offsite_retention.nas]\nkeep_yearly = 3\n"),
            Some(4),
            &[
                "offsite_retention.nas",
                "`app`",
                "no [[offsite]] destination named `nas`",
                "none does",
            ],
        ),
        (
            "an unknown key in a destination's policy",
            format!(
                "{db}[[offsite]]\nname = \"s3\"\nurl = \"/mnt/b\"\n[databases.offsite_retention.s3]\nkeep_weekly = 4\nkeep_forever = true\n"
            ),
            Some(9),
            &["unknown field", "keep_forever"],
        ),
        (
            "an offsite named local",
            format!("{db}[[offsite]]\nname = \"local\"\nurl = \"/mnt/b\"\n"),
            Some(5),
            &["local", "taken by the local backup folder"],
        ),
        (
            "huge keep_last",
            "keep_last = 4294967295\n".into(),
            Some(1),
            &["keep_last", "out of range"],
        ),
        (
            "huge concurrency",
            "max_concurrent_backups = 100000\n".into(),
            Some(1),
            &["max_concurrent_backups", "out of range"],
        ),
        (
            "huge duration",
            "stall_timeout = \"10000000000y\"\n".into(),
            Some(1),
            &["stall_timeout", "366 days"],
        ),
        (
            "overlong grace",
            "misfire_grace = \"400d\"\n".into(),
            Some(1),
            &["misfire_grace", "out of range"],
        ),
        (
            "cron with a year field",
            format!("{db}schedules = [\"* * * * * * 2099\"]\n"),
            Some(4),
            &[
                "schedules",
                "* * * * * * 2099",
                "7 fields",
                "5 (minute hour day month weekday)",
            ],
        ),
        (
            "cron with four fields",
            format!("{db}schedules = [\"* * * *\"]\n"),
            Some(4),
            &["schedules", "4 fields"],
        ),
        (
            "cron that never fires",
            format!("{db}schedules = [\"0 0 30 2 *\"]\n"),
            Some(4),
            &["schedules", "0 0 30 2 *", "never fires"],
        ),
        (
            "empty schedules",
            format!("{db}schedules = []\n"),
            Some(2),
            &["schedules", "empty", "daily at midnight"],
        ),
    ];
    for (what, text, line, words) in cases {
        let err = parse(text).expect_err(what);
        let message = err.to_string();
        assert!(
            message.starts_with("/etc/dbkeep/dbkeep.toml: "),
            "{what}: {message}"
        );
        assert_eq!(err.line, *line, "{what}: {message}");
        for word in *words {
            assert!(
                message.contains(word),
                "{what}: `{word}` missing from: {message}"
            );
        }
    }
}

#[test]
fn a_password_in_a_bad_url_is_never_echoed() {
    for url in [
        "oracle://root:hunter2@localhost/app",
        "mysql://root:hunter2@localhost/app?user=x",
    ] {
        let err = parse(&format!("[[databases]]\nname = \"m\"\nurl = \"{url}\"\n")).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}

#[test]
fn mysql_urls_keep_their_options_and_lose_their_password() {
    let c = parse(
        "[[databases]]\nname = \"shop\"\n\
         url = \"mariadb://app:s3cret@db:3307/shop?socket=/run/mysqld/mysqld.sock&ssl-mode=REQUIRED\"\n\
         verify_url = \"mysql://root@127.0.0.1/x\"\n",
    )
    .unwrap();
    let db = &c.databases[0];
    assert_eq!(db.target.kind(), dbkeep_model::vocab::Kind::Mysql);
    assert_eq!(db.compression, Compression::Gzip);
    let Target::Mysql(server) = &db.target else {
        panic!("not mysql");
    };
    assert_eq!(
        server.url.as_str(),
        "mariadb://app@db:3307/shop?socket=/run/mysqld/mysqld.sock&ssl-mode=REQUIRED"
    );
    assert_eq!(server.password.as_ref().map(Secret::expose), Some("s3cret"));
    // The throwaway server borrows the source's password.
    let verify = db.verify_url.as_ref().unwrap();
    assert_eq!(verify.password.as_ref().map(Secret::expose), Some("s3cret"));
    for (text, words) in [
        (
            "url = \"mysql://root@db/shop\"\nglobals = true",
            &["globals", "PostgreSQL"][..],
        ),
        (
            "url = \"mysql://root@db/shop?password=x&user=y\"",
            &["user", "parameter"],
        ),
        ("url = \"mysql://root@db/-shop\"", &["-shop", "cannot take"]),
        (
            "url = \"mysql://root@db/shop\"\nverify_url = \"postgres://p@db/x\"",
            &["verify_url", "mysql://"],
        ),
    ] {
        let err = parse(&format!("[[databases]]\nname = \"m\"\n{text}\n")).unwrap_err();
        for word in words {
            assert!(err.to_string().contains(word), "{word}: {err}");
        }
    }
}

#[test]
fn the_catalog_is_a_file_or_a_postgres_database() {
    let c = parse(
        "catalog = \"postgres://dbkeep:pw@db.example:5432/dbkeep?sslmode=require\"\n\
         catalog_password_env = \"CATALOG_PW\"\n",
    )
    .unwrap();
    let CatalogLocation::Postgres(server) = &c.catalog else {
        panic!("not postgres: {:?}", c.catalog);
    };
    assert_eq!(
        server.url.as_str(),
        "postgres://dbkeep@db.example:5432/dbkeep?sslmode=require"
    );
    assert_eq!(server.password_env.as_deref(), Some("CATALOG_PW"));
    assert!(!c.catalog.display().contains("pw@"));
    let c = parse("catalog = \"state/cat.sqlite3\"\n").unwrap();
    assert_eq!(
        c.catalog.sqlite_file(),
        Some(Path::new("/etc/dbkeep/state/cat.sqlite3"))
    );
    for (text, words) in [
        (
            "catalog = \"x.sqlite3\"\ncatalog_password_env = \"P\"\n",
            &["catalog_password_env", "PostgreSQL"][..],
        ),
        (
            "catalog = \"mysql://root@db/x\"\n",
            &["catalog", "postgres://"],
        ),
        (
            "catalog = \"postgres://u@db/x\"\ncatalog_password_env = \"not a name\"\n",
            &["catalog_password_env"],
        ),
    ] {
        let err = parse(text).unwrap_err().to_string();
        for word in words {
            assert!(err.contains(word), "{word}: {err}");
        }
    }
}

#[test]
fn lease_timeout_is_at_least_a_second() {
    assert_eq!(
        parse("lease_timeout = \"5s\"\n")
            .unwrap()
            .service
            .lease_timeout,
        std::time::Duration::from_secs(5)
    );
    let err = parse("lease_timeout = \"500ms\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`lease_timeout` must be at least 1s"), "{err}");
}

#[test]
fn smtp_url_takes_only_the_tls_values_dbkeep_knows() {
    let email = |url: &str| {
        format!(
            "[notify.email]\nsmtp_url = \"{url}\"\nfrom = \"dbkeep@example.com\"\nto = [\"ops@example.com\"]\n"
        )
    };
    let tls = |url: &str| parse(&email(url)).unwrap().notify.email.unwrap().tls;
    assert_eq!(tls("smtp://mail.example.com"), SmtpTls::Plain);
    assert_eq!(
        tls("smtp://mail.example.com:587?tls=required"),
        SmtpTls::Required
    );
    assert_eq!(
        tls("smtp://mail.example.com?tls=opportunistic"),
        SmtpTls::Opportunistic
    );
    assert_eq!(tls("smtp://mail.example.com?tls=none"), SmtpTls::None);
    assert_eq!(tls("smtps://mail.example.com"), SmtpTls::Wrapper);
    assert_eq!(
        tls("smtps://mail.example.com?tls=required"),
        SmtpTls::Wrapper
    );
    for (url, words) in [
        (
            "smtp://mail.example.com:587?tls=always",
            &[
                "`smtp_url`",
                "`tls=always`",
                "tls=required",
                "tls=opportunistic",
                "tls=none",
            ][..],
        ),
        ("smtp://mail.example.com?tls=", &["`tls=`", "tls=required"]),
        (
            "smtp://mail.example.com?starttls=yes",
            &["`smtp_url`", "`starttls`", "only `tls`"],
        ),
        (
            "smtp://mail.example.com?tls=required&tls=opportunistic",
            &["`smtp_url`", "`tls` twice"],
        ),
        (
            "smtps://mail.example.com?tls=opportunistic",
            &["`smtp_url`", "smtps://", "`tls=opportunistic`"],
        ),
        (
            "smtps://mail.example.com?tls=none",
            &["`smtp_url`", "smtps://", "`tls=none`"],
        ),
    ] {
        let err = parse(&email(url)).expect_err(url);
        assert_eq!(err.line, Some(2), "{url}: {err}");
        let message = err.to_string();
        for word in words {
            assert!(
                message.contains(word),
                "{url}: `{word}` missing from: {message}"
            );
        }
    }
}

#[test]
fn webhooks_are_named_by_their_name_or_their_host_never_their_path() {
    let two = |first: &str, second: &str| {
        parse(&format!(
            "[[notify.webhook]]\nurl = \"https://hooks.slack.com/services/T0/B0/SECRET\"\n{first}\
             [[notify.webhook]]\nurl = \"https://u:p@hooks.example.com:8443/hook?token=SECRET\"\n{second}"
        ))
    };
    let channels =
        |c: &Config| -> Vec<String> { c.notify.webhooks.iter().map(Webhook::channel).collect() };
    let c = two("", "").unwrap();
    assert_eq!(
        channels(&c),
        [
            "webhook https://hooks.slack.com",
            "webhook https://hooks.example.com:8443"
        ]
    );
    assert!(c.notify.warnings().is_empty(), "{:?}", c.notify.warnings());
    let c = two("name = \"ops-slack\"\n", "").unwrap();
    assert_eq!(channels(&c)[0], "webhook ops-slack");
    // Two webhooks on one host without names are counted together: check says so.
    let c = parse(
        "[[notify.webhook]]\nurl = \"https://hooks.slack.com/services/A\"\n\
         [[notify.webhook]]\nurl = \"https://hooks.slack.com/services/B\"\n",
    )
    .unwrap();
    let warnings = c.notify.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("2 webhooks are all `webhook https://hooks.slack.com`")
            && warnings[0].contains("`name`"),
        "{warnings:?}"
    );
    for (first, second, line, words) in [
        (
            "name = \"ops slack\"\n",
            "",
            3,
            &["webhook `name = \"ops slack\"`", "letters, digits"][..],
        ),
        (
            "name = \"ops\"\n",
            "name = \"ops\"\n",
            6,
            &["duplicate webhook `name = \"ops\"`"],
        ),
    ] {
        let err = two(first, second).unwrap_err();
        assert_eq!(err.line, Some(line), "{err}");
        for word in words {
            assert!(
                err.to_string().contains(word),
                "`{word}` missing from: {err}"
            );
        }
    }
}

#[test]
fn retention_policies_inherit_key_by_key_and_per_destination() {
    let c = parse(
        "retention_days = 14\nkeep_daily = 7\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nkeep_monthly = 12\n\
         [databases.offsite_retention.vault]\nkeep_yearly = 10\n\
         [[databases]]\nname = \"shop\"\nurl = \"sqlite:shop.db\"\nkeep_daily = 3\nretention_days = 0\n\
         [[databases]]\nname = \"plain\"\nurl = \"sqlite:plain.db\"\nkeep_last = 3\n\
         [[offsite]]\nname = \"s3\"\nurl = \"/mnt/s3\"\n\
         [[offsite]]\nname = \"vault\"\nurl = \"/mnt/vault\"\nkeep_monthly = 24\nkeep_last = 2\n",
    )
    .unwrap();
    let local = Destination::Local;
    let s3 = Destination::Offsite("s3".into());
    let vault = Destination::Offsite("vault".into());
    let app = c.retention("app", &local, None);
    assert_eq!(
        (
            app.within_days,
            app.last,
            app.daily,
            app.monthly,
            app.yearly
        ),
        (14, 1, 7, 12, 0)
    );
    // A destination without its own policy follows the database's.
    assert_eq!(c.retention("app", &s3, None), app);
    // A destination's own policy stands alone; the database's keys for it go over it.
    let v = c.retention("app", &vault, None);
    assert_eq!(
        (v.within_days, v.last, v.daily, v.monthly, v.yearly),
        (0, 2, 0, 24, 10)
    );
    let shop = c.retention("shop", &vault, None);
    assert_eq!(
        (shop.within_days, shop.last, shop.monthly, shop.yearly),
        (0, 2, 24, 0)
    );
    let shop = c.retention("shop", &local, None);
    assert_eq!((shop.within_days, shop.daily), (0, 3));
    // A command line's --retention-days replaces retention_days everywhere.
    assert_eq!(c.retention("shop", &vault, Some(5)).within_days, 5);
    // Without calendar rules anywhere, retention_days is 30 as before.
    let c = parse("[[databases]]\nname = \"a\"\nurl = \"sqlite:a.db\"\nkeep_last = 3\n").unwrap();
    let a = c.retention("a", &local, None);
    assert_eq!((a.within_days, a.last, a.has_calendar()), (30, 3, false));
    // With one, the calendar decides alone unless retention_days is given.
    let c = parse("keep_weekly = 4\n").unwrap();
    assert_eq!(c.retention("x", &local, None).within_days, 0);
    assert_eq!(
        c.retention("x", &local, None).to_string(),
        "retention_days 0, keep_last 1, keep_weekly 4"
    );
}

#[test]
fn a_server_gives_what_it_finds_its_defaults_and_a_derived_name() {
    let c = parse(
        r#"
age_recipients = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]
[[servers]]
name = "pg"
url = "postgres://backup:pw@db.example:5433/"
password_env = "PG_PASSWORD"
include = ["tenant_*"]
exclude = ["tenant_tmp*"]
schedules = ["0 2 * * *"]
keep_daily = 7
spread = "2h"

[[servers]]
name = "my"
url = "mysql://root@db.example:3306/"

[[servers]]
name = "files"
url = "sqlite:tenants/*.sqlite3"

[[offsite]]
name = "s3"
url = "file:///srv/copies"
databases = ["pg"]
"#,
    )
    .unwrap();
    let pg = c.server("pg").unwrap();
    assert_eq!(pg.max_concurrent, Some(1));
    assert_eq!(pg.spread, std::time::Duration::from_secs(7200));
    assert_eq!(pg.excluded("tenant_1"), None);
    assert_eq!(
        pg.excluded("tenant_tmp1").unwrap(),
        "matches exclude `tenant_tmp*`"
    );
    assert_eq!(pg.excluded("shop").unwrap(), "matches no include pattern");
    assert_eq!(pg.name_for("tenant_1").unwrap(), "pg-tenant_1");
    assert!(pg.name_for("a b").unwrap_err().contains("`pg-a b`"));
    let db = pg.database("pg-tenant_1", "tenant_1", DiscoveryState::Known, None);
    let Target::Postgres(t) = &db.target else {
        panic!("not postgres")
    };
    assert_eq!(t.url.as_str(), "postgres://backup@db.example:5433/tenant_1");
    assert_eq!(t.password_env.as_deref(), Some("PG_PASSWORD"));
    assert_eq!(db.schedules[0].expr, "0 2 * * *");
    assert!(
        db.encryption.is_some(),
        "the top-level recipients reach a server's databases"
    );
    assert_eq!(
        c.retention("pg-tenant_1", &Destination::Local, None).daily,
        0
    );
    // The stable offset: the same name, the same share of the window, within it.
    assert_eq!(pg.offset("pg-tenant_1"), pg.offset("pg-tenant_1"));
    assert!(pg.offset("pg-tenant_1") < pg.spread);
    let my = c.server("my").unwrap();
    assert_eq!(my.display(), "mysql://root@db.example:3306/");
    assert_eq!(
        my.excluded("performance_schema").unwrap(),
        "a system schema"
    );
    let files = c.server("files").unwrap();
    assert_eq!(files.max_concurrent, None);
    assert_eq!(
        files.name_for("/etc/dbkeep/tenants/acme.sqlite3").unwrap(),
        "files-acme"
    );
    // What discovery recorded joins the configuration; an [[offsite]] naming the server takes
    // its databases.
    let at = chrono::Utc::now();
    let row = |name: &str, server: &str, database: &str, state| DiscoveredDatabase {
        name: name.into(),
        server: server.into(),
        database: database.into(),
        state,
        found_at: at,
        changed_at: at,
        detail: None,
    };
    let with = c.with_discovered(&[
        row("pg-tenant_1", "pg", "tenant_1", DiscoveryState::Known),
        row("pg-tenant_2", "pg", "tenant_2", DiscoveryState::Gone),
        row("old-x", "old", "x", DiscoveryState::Known),
    ]);
    let names: Vec<&str> = with.databases.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        ["pg-tenant_1", "pg-tenant_2"],
        "a server no longer configured is left out"
    );
    assert!(with.database("pg-tenant_1").unwrap().is_scheduled());
    assert!(!with.database("pg-tenant_2").unwrap().is_scheduled());
    assert!(with.offsite[0].takes("pg-tenant_1"));
    assert_eq!(
        with.retention("pg-tenant_1", &Destination::Local, None)
            .daily,
        7
    );
}

#[test]
fn a_server_archiving_wal_has_its_base_backups_as_a_database_of_its_name() {
    let c = parse(
        "[[servers]]\nname = \"pg\"\nurl = \"postgres://u@h:5433/\"\nwal_archive = true\nkeep_weekly = 4\n",
    )
    .unwrap();
    let base = c.database("pg").unwrap();
    assert_eq!(base.target.kind(), dbkeep_model::vocab::Kind::PostgresBase);
    assert_eq!(base.target.display(), "postgres://u@h:5433/");
    assert_eq!(base.compression, Compression::Zstd);
    assert_eq!(
        base.schedules
            .iter()
            .map(|s| s.expr.as_str())
            .collect::<Vec<_>>(),
        [super::server::DEFAULT_BASE_SCHEDULE]
    );
    assert!(!base.globals && base.discovered.is_none());
    assert_eq!(c.retention("pg", &Destination::Local, None).weekly, 4);
    let server = c.server("pg").unwrap();
    assert!(server.archives_wal());
    assert_eq!(
        server.wal_stalled_after,
        super::server::DEFAULT_WAL_STALLED_AFTER
    );
    // Without it, a server has no such database.
    let plain = parse("[[servers]]\nname = \"pg\"\nurl = \"postgres://u@h/\"\n").unwrap();
    assert!(plain.database("pg").is_err());
    assert!(!plain.server("pg").unwrap().archives_wal());
}

#[test]
fn bad_server_entries_name_the_key_and_the_fix() {
    let cases: &[(&str, &str)] = &[
        (
            "[[servers]]\nname = \"a.b\"\nurl = \"postgres://u@h/\"\n",
            "server `name = \"a.b\"` is invalid",
        ),
        (
            "[[servers]]\nname = \"my\"\nurl = \"mysql://u@h/shop\"\n",
            "names the database `shop`: a MySQL server's URL names none",
        ),
        (
            "[[servers]]\nname = \"x\"\nurl = \"redis://h/\"\n",
            "scheme `redis:` of server `x` is not supported",
        ),
        (
            "[[servers]]\nname = \"x\"\nurl = \"postgres://u@h/\"\ninclude = [\"[\"]\n",
            "`include` of server `x`: `[` is not a glob pattern",
        ),
        (
            "[[servers]]\nname = \"x\"\nurl = \"postgres://u@h/\"\nspread = \"soon\"\n",
            "`spread` of server `x` = \"soon\" is not a duration",
        ),
        (
            "[[servers]]\nname = \"x\"\nurl = \"postgres://u@h/\"\nmax_concurrent_per_server = 0\n",
            "`max_concurrent_per_server` of server `x` = 0 is out of range",
        ),
        (
            "[[servers]]\nname = \"x\"\nurl = \"sqlite:\"\n",
            "has no file pattern after `sqlite:`",
        ),
        (
            "[[servers]]\nname = \"x\"\nurl = \"mysql://u@h/\"\nwal_archive = true\n",
            "`wal_archive` of server `x` applies only to PostgreSQL servers",
        ),
        (
            "[[servers]]\nname = \"x\"\nurl = \"postgres://u@h/\"\nbase_schedules = [\"@daily\"]\n",
            "`base_schedules` of server `x` needs `wal_archive = true`",
        ),
        (
            "[[servers]]\nname = \"x\"\nurl = \"postgres://u@h/\"\nwal_archive = true\nbase_schedules = [\"soon\"]\n",
            "`base_schedules` of server `x`: `soon`",
        ),
        (
            "[[servers]]\nname = \"x\"\nurl = \"postgres://u@h/\"\nwal_archive = true\nwal_stalled_after = \"never\"\n",
            "`wal_stalled_after` of server `x` = \"never\" is not a duration",
        ),
        (
            "[[databases]]\nname = \"x\"\nurl = \"sqlite:/a.db\"\n[[servers]]\nname = \"x\"\nurl = \"postgres://u@h/\"\nwal_archive = true\n",
            "is also the name of a [[servers]] entry with `wal_archive = true`",
        ),
        (
            "[[servers]]\nname = \"x\"\nurl = \"sqlite:/a/*.db\"\npassword_env = \"P\"\n",
            "applies only to PostgreSQL and MySQL",
        ),
        (
            "[[servers]]\nname = \"x\"\nurl = \"postgres://u@h/\"\n[[servers]]\nname = \"x\"\nurl = \"postgres://u@g/\"\n",
            "duplicate server `name = \"x\"`",
        ),
        (
            "[[servers]]\nname = \"x\"\nurl = \"postgres://u@h/\"\ndatabases = []\n",
            "unknown field `databases`",
        ),
        (
            "discover_every = \"0s\"\n",
            "`discover_every` = \"0s\" is out of range",
        ),
    ];
    for (text, expected) in cases {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(expected), "for {text:?}: {e}");
        assert!(e.contains("dbkeep.toml"), "names the file: {e}");
    }
}

#[test]
fn auth_and_audit_settings_are_read_and_checked() {
    use super::auth::TwoFactorRule;
    use dbkeep_model::accounts::Role;
    let db = "[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n";
    let c = parse(db).unwrap();
    assert_eq!(c.web.auth.require_2fa, TwoFactorRule::Off);
    assert_eq!(c.service.audit_retention_days, 400);
    for (value, rule) in [
        ("false", TwoFactorRule::Off),
        ("true", TwoFactorRule::Admins),
        ("\"admins\"", TwoFactorRule::Admins),
        ("\"all\"", TwoFactorRule::All),
        ("\"off\"", TwoFactorRule::Off),
    ] {
        let c = parse(&format!("[auth]\nrequire_2fa = {value}\n{db}")).unwrap();
        assert_eq!(c.web.auth.require_2fa, rule, "{value}");
    }
    assert!(TwoFactorRule::Admins.requires(Role::Admin));
    assert!(!TwoFactorRule::Admins.requires(Role::Operator));
    assert!(TwoFactorRule::All.requires(Role::Viewer));
    let e = parse(&format!("[auth]\nrequire_2fa = \"sometimes\"\n{db}")).unwrap_err();
    assert_eq!(e.line, Some(2));
    assert!(
        e.message.contains("\"sometimes\"") && e.message.contains("\"all\""),
        "{e}"
    );
    let e = parse(&format!("[auth]\nlocal_logins = false\n{db}")).unwrap_err();
    assert!(e.message.contains("local_logins"), "{e}");
    let c = parse(&format!("audit_retention = \"2years\"\n{db}")).unwrap();
    assert!(c.service.audit_retention_days >= 730);
    for bad in ["\"10d\"", "\"soon\"", "\"200years\""] {
        let e = parse(&format!("audit_retention = {bad}\n{db}")).unwrap_err();
        assert!(e.message.contains("audit_retention"), "{bad}: {e}");
        assert_eq!(e.line, Some(1));
    }
}

#[test]
fn top_level_schedules_are_every_database_and_server_default_and_an_entry_s_own_win() {
    let c = parse(
        "schedules = [\"0 */6 * * *\", \"@weekly\"]\n\
         [[databases]]\nname = \"a\"\nurl = \"sqlite:a.db\"\n\
         [[databases]]\nname = \"b\"\nurl = \"sqlite:b.db\"\nschedules = [\"30 1 * * *\"]\n\
         [[servers]]\nname = \"pg\"\nurl = \"postgres://u@h/\"\n",
    )
    .unwrap();
    let exprs = |d: &DatabaseConfig| {
        d.schedules
            .iter()
            .map(|s| s.expr.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(exprs(c.database("a").unwrap()), ["0 */6 * * *", "@weekly"]);
    assert_eq!(exprs(c.database("b").unwrap()), ["30 1 * * *"]);
    let at = chrono::Utc::now();
    let found = c.with_discovered(&[DiscoveredDatabase {
        name: "pg-t".into(),
        server: "pg".into(),
        database: "t".into(),
        state: DiscoveryState::Known,
        found_at: at,
        changed_at: at,
        detail: None,
    }]);
    assert_eq!(
        exprs(found.database("pg-t").unwrap()),
        ["0 */6 * * *", "@weekly"]
    );
    // Without it, daily at midnight as before.
    let c = parse("[[databases]]\nname = \"a\"\nurl = \"sqlite:a.db\"\n").unwrap();
    assert_eq!(exprs(c.database("a").unwrap()), [DEFAULT_SCHEDULE]);
    // A bad one is named at the top level, once.
    for (text, says) in [
        (
            "schedules = []\n",
            "`schedules` is empty; remove it for the default",
        ),
        ("schedules = [\"every day\"]\n", "`schedules`: `every day`"),
    ] {
        let e = parse(&format!(
            "{text}[[databases]]\nname = \"a\"\nurl = \"sqlite:a.db\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains(says), "{text}: {e}");
        assert!(!e.contains("of `a`"), "{text}: {e}");
    }
}
