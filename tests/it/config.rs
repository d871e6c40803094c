//! Invalid configuration is rejected before anything is backed up, with a
//! message that names the file and the offending key; passwords written in
//! URLs are never printed.

use std::fs;

use crate::common::*;

const VALID_DB: &str = "[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n";

struct Case {
    name: &'static str,
    config: String,
    /// Substrings stderr must contain (besides the config path).
    expect: &'static [&'static str],
    /// TOML-level errors must say on which line they are.
    line: Option<u32>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "unknown top-level key",
            config: format!("retention_dayz = 3\n\n{VALID_DB}"),
            expect: &["retention_dayz"],
            line: Some(1),
        },
        Case {
            name: "unknown key in [[databases]]",
            config: format!("{VALID_DB}compresion = \"gzip\"\n"),
            expect: &["compresion"],
            line: Some(4),
        },
        Case {
            name: "duplicate database name",
            config: format!("{VALID_DB}\n{VALID_DB}"),
            expect: &["name", "app"],
            line: None,
        },
        Case {
            name: "bad URL scheme",
            config: "[[databases]]\nname = \"app\"\nurl = \"oracle://root@localhost/app\"\n".into(),
            expect: &["url", "oracle"],
            line: None,
        },
        Case {
            name: "name with a space",
            config: "[[databases]]\nname = \"my app\"\nurl = \"sqlite:app.db\"\n".into(),
            expect: &["name", "my app"],
            line: None,
        },
        Case {
            name: "wrong type",
            config: format!("retention_days = \"ten\"\n\n{VALID_DB}"),
            expect: &["retention_days"],
            line: Some(1),
        },
        Case {
            name: "bad cron expression",
            config: format!("{VALID_DB}schedules = [\"61 * * * *\"]\n"),
            expect: &["schedules", "61 * * * *"],
            line: None,
        },
        Case {
            name: "bad compression",
            config: format!("{VALID_DB}compression = \"rar\"\n"),
            expect: &["compression", "rar"],
            line: None,
        },
        Case {
            name: "missing url",
            config: "[[databases]]\nname = \"app\"\n".into(),
            expect: &["url"],
            line: Some(1),
        },
        Case {
            name: "keep_last zero",
            config: format!("keep_last = 0\n\n{VALID_DB}"),
            expect: &["keep_last"],
            line: None,
        },
        Case {
            name: "TOML syntax error",
            config: format!("backup_dir = \"backups\n\n{VALID_DB}"),
            expect: &[],
            line: Some(1),
        },
    ]
}

/// A sandbox with a valid SQLite database, so that only the config is wrong.
fn sandbox_with(config: &str) -> Sandbox {
    let sb = Sandbox::new();
    create_sample_sqlite(&sb.path().join("app.db"));
    sb.write_config(config);
    sb
}

#[test]
fn bad_configs_are_rejected_with_exit_code_2() {
    let mut problems = Vec::new();
    for case in cases() {
        let sb = sandbox_with(&case.config);
        let run = sb.run(&["backup"]);
        let config_path = sb.config_path().display().to_string();
        let mut issues = Vec::new();
        if run.code != Some(2) {
            issues.push(format!("exit code {:?}, want 2", run.code));
        }
        if !run.stderr.contains(&config_path) {
            issues.push("stderr does not name the config file".to_string());
        }
        for needle in case.expect {
            if !run.stderr.contains(needle) {
                issues.push(format!("stderr does not mention {needle:?}"));
            }
        }
        if let Some(line) = case.line
            && !run.stderr.contains(&format!("line {line}"))
        {
            issues.push(format!("stderr does not say `line {line}`"));
        }
        let produced = files_below(&sb.backup_dir());
        if !produced.is_empty() {
            issues.push(format!("files were backed up anyway: {produced:?}"));
        }
        if !issues.is_empty() {
            problems.push(format!(
                "case {:?}:\n  {}\nconfig:\n{}\n{run:?}",
                case.name,
                issues.join("\n  "),
                case.config
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n\n"));
}

#[test]
fn missing_config_file_is_exit_code_2() {
    let sb = Sandbox::new();
    let missing = sb.path().join("nope.toml");
    let run = run_cmd(sb.bare_cmd().arg("--config").arg(&missing).arg("backup"));
    run.assert_code(2);
    assert!(
        run.stderr.contains(&missing.display().to_string()),
        "stderr does not name the file:\n{run:?}"
    );
    assert!(!missing.exists());
}

#[test]
fn config_errors_are_rejected_by_every_command() {
    let sb = sandbox_with(&format!("retention_dayz = 3\n\n{VALID_DB}"));
    for args in [
        &["list"][..],
        &["prune"],
        &["prune", "--dry-run"],
        &["backup", "--database", "app"],
    ] {
        let run = sb.run(args);
        assert_eq!(run.code, Some(2), "{args:?}\n{run:?}");
        assert!(run.stderr.contains("retention_dayz"), "{args:?}\n{run:?}");
    }
    assert!(files_below(&sb.backup_dir()).is_empty());
}

fn snapshot_stderr(snapshot: &str, config: &str) {
    let sb = sandbox_with(config);
    let run = sb.run(&["backup"]);
    run.assert_code(2);
    snapshot_settings(&sb).bind(|| insta::assert_snapshot!(snapshot, run.stderr));
}

#[test]
fn snapshot_unknown_top_level_key() {
    snapshot_stderr(
        "config_unknown_top_level_key",
        &format!("retention_dayz = 3\n\n{VALID_DB}"),
    );
}

#[test]
fn snapshot_wrong_type() {
    snapshot_stderr(
        "config_wrong_type",
        &format!("retention_days = \"ten\"\n\n{VALID_DB}"),
    );
}

#[test]
fn snapshot_duplicate_name() {
    snapshot_stderr("config_duplicate_name", &format!("{VALID_DB}\n{VALID_DB}"));
}

#[test]
fn snapshot_bad_cron() {
    snapshot_stderr(
        "config_bad_cron",
        &format!("{VALID_DB}schedules = [\"61 * * * *\"]\n"),
    );
}

#[test]
fn snapshot_syntax_error() {
    snapshot_stderr(
        "config_syntax_error",
        &format!("backup_dir = \"backups\n\n{VALID_DB}"),
    );
}

const URL_SECRET: &str = "Hunter2-url-secret";

#[test]
fn password_in_url_is_not_printed_by_config_errors() {
    let cases = [
        // The URL itself is invalid.
        format!(
            "[[databases]]\nname = \"app\"\nurl = \"oracle://root:{URL_SECRET}@localhost/app\"\n"
        ),
        format!(
            "[[databases]]\nname = \"app\"\nurl = \"mysql://root:{URL_SECRET}@localhost/app?host=x\"\n"
        ),
        // A valid MySQL URL, another key invalid.
        format!(
            "[[databases]]\nname = \"app\"\nurl = \"mysql://root:{URL_SECRET}@localhost/app\"\n\
             globals = true\n"
        ),
        // Another key of the same database is invalid.
        format!(
            "[[databases]]\nname = \"app\"\nurl = \"postgres://u:{URL_SECRET}@localhost/app\"\n\
             schedules = [\"61 * * * *\"]\n"
        ),
        format!(
            "[[databases]]\nname = \"my app\"\nurl = \"postgres://u:{URL_SECRET}@localhost/app\"\n"
        ),
        format!(
            "[[databases]]\nname = \"app\"\nurl = \"postgres://u:{URL_SECRET}@localhost/app\"\n\
             compression = \"rar\"\n"
        ),
        // Duplicate names where both entries carry the password.
        format!(
            "[[databases]]\nname = \"app\"\nurl = \"postgres://u:{URL_SECRET}@localhost/app\"\n\n\
             [[databases]]\nname = \"app\"\nurl = \"postgres://u:{URL_SECRET}@localhost/app\"\n"
        ),
        // A port that is not a number.
        format!(
            "[[databases]]\nname = \"app\"\nurl = \"postgres://u:{URL_SECRET}@localhost:port/app\"\n"
        ),
    ];
    for config in cases {
        let sb = sandbox_with(&config);
        for args in [&["backup"][..], &["list"], &["prune", "--dry-run"]] {
            let run = sb.run(args);
            assert_eq!(run.code, Some(2), "{args:?} with\n{config}\n{run:?}");
            assert_absent(&run.all_output(), URL_SECRET, &format!("{args:?} output"));
        }
    }
}

#[test]
fn password_in_url_is_not_printed_by_toml_errors_on_its_line() {
    let cases = [
        // Syntax error on the line holding the password.
        format!(
            "[[databases]]\nname = \"app\"\nurl = \"postgres://u:{URL_SECRET}@localhost/app\" x\n"
        ),
        // Wrong type on the line holding the password.
        format!(
            "[[databases]]\nname = \"app\"\nurl = [\"postgres://u:{URL_SECRET}@localhost/app\"]\n"
        ),
    ];
    for config in cases {
        let sb = sandbox_with(&config);
        let run = sb.run(&["backup"]);
        assert_eq!(run.code, Some(2), "with\n{config}\n{run:?}");
        assert_absent(&run.all_output(), URL_SECRET, "TOML error output");
    }
}

#[test]
fn password_in_url_is_not_printed_by_commands() {
    let sb = Sandbox::new();
    // Nothing listens on port 1, so the backup fails after starting pg_dump.
    sb.write_config(&format!(
        "[[databases]]\nname = \"remote\"\nurl = \"postgres://postgres:{URL_SECRET}@127.0.0.1:1/app\"\n"
    ));
    let backup = sb.run(&["backup"]);
    backup.assert_code(1);
    assert_absent(&backup.all_output(), URL_SECRET, "backup output");
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["list", "--status", "failed"],
        &["prune", "--dry-run"],
        &["prune"],
        &["backup", "--database", "remote", "--no-cleanup"],
    ] {
        let run = sb.run(args);
        assert_absent(&run.all_output(), URL_SECRET, &format!("{args:?} output"));
    }
    assert_absent_bytes(&sb.catalog_bytes(), URL_SECRET, "the catalog database");
    let config = fs::read_to_string(sb.config_path()).unwrap();
    assert!(config.contains(URL_SECRET), "config file was rewritten");
}

#[test]
fn check_refuses_values_that_would_only_fail_later() {
    let sb = Sandbox::new();
    fs::write(sb.path().join("notes.txt"), "not a key\n").unwrap();
    let pg = "[[databases]]\nname = \"main\"\nurl = \"postgres://u@db/main";
    // (configuration, its line at fault, words the message must hold)
    let cases: Vec<(String, usize, Vec<&str>)> = vec![
        (
            format!("public_url = \"javascript:alert(1)\"\n{VALID_DB}"),
            1,
            vec!["public_url", "javascript:", "http"],
        ),
        (
            format!("public_url = \"ftp://backups.example.com\"\n{VALID_DB}"),
            1,
            vec!["public_url", "ftp:", "https://"],
        ),
        (
            format!("\nidentity_file = \"keys/missing.txt\"\n{VALID_DB}"),
            2,
            vec!["identity_file", "keys/missing.txt", "No such file"],
        ),
        (
            format!("identity_file = \"notes.txt\"\n{VALID_DB}"),
            1,
            vec!["identity_file", "notes.txt", "age identity"],
        ),
        (
            format!("{pg}?sslmode=sometimes\"\n"),
            3,
            vec!["url", "sslmode", "sometimes", "verify-full"],
        ),
        (
            format!("{pg}\"\nverify_url = \"postgres://u@scratch/x?sslmode=on\"\n"),
            4,
            vec!["verify_url", "`sslmode=on`"],
        ),
        (
            format!("verify_url = \"postgres://u@scratch/x?sslmode=on\"\n{pg}\"\n"),
            1,
            vec!["verify_url", "`sslmode=on`"],
        ),
        (
            "catalog = \"postgres://u@db/catalog?sslmode=requir\"\n".to_string(),
            1,
            vec!["catalog", "sslmode", "requir"],
        ),
    ];
    let config_path = sb.config_path().display().to_string();
    let mut problems = Vec::new();
    for (config, line, words) in &cases {
        sb.write_config(config);
        let run = sb.run(&["check"]);
        let mut issues = Vec::new();
        if run.code != Some(2) {
            issues.push(format!("exit code {:?}, want 2", run.code));
        }
        let at = format!("{config_path}: line {line}: ");
        if !run.stderr.contains(&at) {
            issues.push(format!("stderr does not start with `{at}`"));
        }
        for word in words {
            if !run.stderr.contains(word) {
                issues.push(format!("stderr does not mention {word:?}"));
            }
        }
        if !issues.is_empty() {
            problems.push(format!("{}\nconfig:\n{config}\n{run:?}", issues.join("\n")));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n\n"));
    // What is valid passes: an https address, a real identity, the sslmodes libpq knows.
    let (key, _) = crate::encryption::keygen(sb.path(), "key.txt");
    sb.write_config(&format!(
        "public_url = \"https://backups.example.com/admin\"\nidentity_file = \"{}\"\n\
         catalog = \"postgres://u@db/catalog?sslmode=verify-full\"\n\
         verify_url = \"postgres://u@scratch/x?sslmode=disable\"\n{pg}?sslmode=prefer\"\n",
        key.display()
    ));
    let run = sb.run(&["check"]);
    run.assert_success();
}
