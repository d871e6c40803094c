//! Encryption at rest with age, against the real `age` and `age-keygen` commands.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::*;

/// A new age identity in `dir/name`, and its public key.
pub fn keygen(dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    let path = dir.join(name);
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&path)
        .output()
        .expect("age-keygen (the test script installs Debian's age)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = Command::new("age-keygen")
        .arg("-y")
        .arg(&path)
        .output()
        .unwrap();
    (
        path,
        String::from_utf8(public.stdout).unwrap().trim().to_string(),
    )
}

#[test]
fn an_encrypted_postgres_backup_opens_with_the_age_command_and_restores_with_its_identity() {
    let source = PgDb::create("age_src");
    source.psql(
        "CREATE TABLE notes (id int PRIMARY KEY, body text);
         INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 500) g;",
    );
    let sandbox = Sandbox::new();
    let (key, public) = keygen(sandbox.path(), "key.txt");
    let (other, _) = keygen(sandbox.path(), "other.txt");
    sandbox.write_config(&format!(
        "age_recipients = [\"{public}\"]\n[[databases]]\nname = \"pg\"\nurl = \"{}\"\n",
        source.url()
    ));
    sandbox.run(&["backup"]).assert_success();
    let row = sandbox.rows_for("pg")[0].clone();
    let id = row["id"].as_i64().unwrap().to_string();
    assert_eq!(row["encrypted"], true, "{row:#}");
    let file = assert_success_row(&row, "pg", "postgres");
    assert!(file.to_string_lossy().ends_with(".sql.gz.age"), "{file:?}");
    let stored = fs::read(&file).unwrap();
    assert!(
        stored.starts_with(b"age-encryption.org/v1\n"),
        "an age file"
    );
    assert!(
        !stored.windows(9).any(|w| w == b"note 123\t"),
        "no plaintext"
    );
    assert_eq!(mode_of(&file), 0o600);

    // Without dbkeep: age -d -i key.txt FILE | gunzip | psql.
    let by_hand = PgDb::create("age_hand");
    let loaded = Command::new("bash")
        .args([
            "-c",
            "set -o pipefail; age -d -i \"$1\" \"$2\" | gunzip | psql -X -q -v ON_ERROR_STOP=1 -d \"$3\" >/dev/null",
            "_",
        ])
        .arg(&key)
        .arg(&file)
        .arg(by_hand.url())
        .output()
        .unwrap();
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let sum = "SELECT count(*), md5(string_agg(body, ',' ORDER BY id)) FROM notes";
    assert_eq!(by_hand.scalar(sum), source.scalar(sum));

    // No identity here: the checksum is all that can be proven, and verify says so.
    let run = sandbox.run(&["verify", &id]);
    run.assert_success();
    assert!(
        run.stdout.contains(&format!("ok      #{id}  pg  checksum")),
        "{run:?}"
    );
    assert!(run.stdout.contains("needs its age identity"), "{run:?}");
    assert_eq!(sandbox.rows_for("pg")[0]["verify_level"], "checksum");
    // With it: a real restore.
    let run = sandbox.run(&["verify", &id, "--identity", key.to_str().unwrap()]);
    run.assert_success();
    assert!(run.stdout.contains("restore  (restored in "), "{run:?}");

    let name = format!("{}_new", source.name);
    let url = url_with(&pg_url(), &name, None);
    let run = sandbox.run(&["restore", &id, "--to", &url, "--create"]);
    run.assert_code(2);
    assert!(run.stderr.contains("--identity"), "{run:?}");
    let run = sandbox.run(&[
        "restore",
        &id,
        "--to",
        &url,
        "--create",
        "--identity",
        other.to_str().unwrap(),
    ]);
    run.assert_code(2);
    assert!(run.stderr.contains("cannot decrypt"), "{run:?}");
    let run = sandbox.run(&[
        "restore",
        &id,
        "--to",
        &url,
        "--create",
        "--identity",
        key.to_str().unwrap(),
    ]);
    run.assert_success();
    let restored = PgDb::existing(name);
    assert_eq!(restored.scalar(sum), source.scalar(sum));
}

#[test]
fn a_sqlite_backup_encrypted_with_a_passphrase_verifies_and_restores() {
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("app.db");
    create_sample_sqlite(&db);
    sandbox.write_config(
        "[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nage_passphrase_env = \"APP_AGE_PASSPHRASE\"\n",
    );
    let with = |args: &[&str]| {
        run_cmd(
            sandbox
                .cmd()
                .args(args)
                .env("APP_AGE_PASSPHRASE", "correct horse battery staple"),
        )
    };
    // Without the passphrase nothing is stored in the clear: the backup fails.
    let run = sandbox.run(&["backup"]);
    run.assert_code(1);
    assert!(
        run.stdout
            .contains("APP_AGE_PASSPHRASE (age_passphrase_env) is unset"),
        "{run:?}"
    );
    assert_eq!(file_names(&sandbox.db_dir("app")), Vec::<String>::new());

    with(&["backup"]).assert_success();
    let row = sandbox.rows_for("app")[0].clone();
    let id = row["id"].as_i64().unwrap().to_string();
    let file = assert_success_row(&row, "app", "sqlite");
    assert!(file.to_string_lossy().ends_with(".db.age"), "{file:?}");
    let run = with(&["verify", &id]);
    run.assert_success();
    assert!(run.stdout.contains("restore  (restored in "), "{run:?}");

    let copy = sandbox.path().join("copy.db");
    with(&["restore", &id, "--to", copy.to_str().unwrap()]).assert_success();
    let fingerprint = |p: &Path| sqlite_fingerprint(&rusqlite::Connection::open(p).unwrap());
    assert_eq!(fingerprint(&copy), fingerprint(&db));
}

#[test]
fn bad_age_keys_are_named_in_the_configuration_error() {
    let sandbox = Sandbox::new();
    sandbox.write_config(
        "age_recipients = [\"age1nope\"]\n[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
    );
    let run = sandbox.run(&["list"]);
    run.assert_code(2);
    assert!(run.stderr.contains("`age_recipients`"), "{run:?}");
    assert!(run.stderr.contains("age1nope"), "{run:?}");
    sandbox.write_config(
        "[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nage_recipients = []\n",
    );
    let run = sandbox.run(&["list"]);
    run.assert_code(2);
    assert!(run.stderr.contains("is empty"), "{run:?}");
}

#[test]
fn a_passphrase_backup_opens_beside_an_identity_file_and_a_failure_names_both_ways() {
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("app.db");
    create_sample_sqlite(&db);
    let (_unrelated, _) = keygen(sandbox.path(), "key.txt");
    sandbox.write_config(
        "identity_file = \"key.txt\"\n[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\ncompression = \"gzip\"\nage_passphrase_env = \"APP_AGE_PASSPHRASE\"\n",
    );
    let with = |passphrase: &str, args: &[&str]| {
        run_cmd(
            sandbox
                .cmd()
                .args(args)
                .env("APP_AGE_PASSPHRASE", passphrase),
        )
    };
    let right = "correct horse battery staple";
    with(right, &["backup"]).assert_success();
    let id = sandbox.rows_for("app")[0]["id"].to_string();
    let run = with(right, &["verify", &id]);
    run.assert_success();
    assert!(run.stdout.contains("restore  (restored in "), "{run:?}");
    let copy = sandbox.path().join("copy.db");
    with(right, &["restore", &id, "--to", copy.to_str().unwrap()]).assert_success();
    let fingerprint = |p: &Path| sqlite_fingerprint(&rusqlite::Connection::open(p).unwrap());
    assert_eq!(fingerprint(&copy), fingerprint(&db));

    // Neither way opens it: the failure says which ways were tried.
    let run = with("wrong", &["verify", &id]);
    run.assert_code(1);
    assert!(
        run.stdout.contains("the passphrase in $APP_AGE_PASSPHRASE")
            && run.stdout.contains("the identity file"),
        "{run:?}"
    );
}

#[test]
fn verify_with_a_bad_identity_fails_instead_of_checking_the_checksum_only() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let (_, public) = keygen(sandbox.path(), "key.txt");
    let (other, _) = keygen(sandbox.path(), "other.txt");
    sandbox.write_config(&format!(
        "age_recipients = [\"{public}\"]\n[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n"
    ));
    sandbox.run(&["backup"]).assert_success();
    let id = sandbox.rows_for("app")[0]["id"].to_string();
    let junk = sandbox.path().join("junk.txt");
    fs::write(&junk, "not an identity\n").unwrap();
    let run = sandbox.run(&["verify", &id, "--identity", junk.to_str().unwrap()]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("--identity") && run.stderr.contains("junk.txt"),
        "{run:?}"
    );
    let missing = sandbox.path().join("missing.txt");
    sandbox
        .run(&["verify", &id, "--identity", missing.to_str().unwrap()])
        .assert_code(2);
    // A real identity, but not this backup's: the verification fails, at the level asked.
    let run = sandbox.run(&["verify", &id, "--identity", other.to_str().unwrap()]);
    run.assert_code(1);
    assert!(run.stdout.contains("cannot decrypt"), "{run:?}");
    assert!(!run.stdout.contains("ok  "), "{run:?}");
    assert_eq!(sandbox.rows_for("app")[0]["verify_status"], "failed");
    // A configured identity that is not one fails too (drills in `serve` as well).
    sandbox.write_config(&format!(
        "identity_file = \"junk.txt\"\nage_recipients = [\"{public}\"]\n[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n"
    ));
    let run = sandbox.run(&["verify", &id]);
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(run.all_output().contains("junk.txt"), "{run:?}");
}

/// `input` encrypted by the `age` command itself to the recipient `public`, into `output`.
fn age_encrypt(public: &str, input: &Path, output: &Path) {
    let run = Command::new("age")
        .args(["-r", public, "-o"])
        .arg(output)
        .arg(input)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn age_files_are_imported_opened_with_the_configured_identity_and_refused_without_it() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let (key, public) = keygen(sandbox.path(), "key.txt");
    let (other, _) = keygen(sandbox.path(), "other.txt");
    // Outside files encrypted by the `age` command itself: a SQLite file, and the same file
    // gzipped first.
    let old = sandbox.path().join("old");
    fs::create_dir(&old).unwrap();
    let plain = old.join("sqlite_backup_20250101_000000.db");
    fs::copy(sandbox.path().join("app.db"), &plain).unwrap();
    let gz = old.join("sqlite_backup_20250102_000000.db.gz");
    bash(&format!(
        "gzip -c '{}' > '{}'",
        plain.display(),
        gz.display()
    ));
    let mut sealed = Vec::new();
    for file in [&plain, &gz] {
        let out = std::path::PathBuf::from(format!("{}.age", file.display()));
        age_encrypt(&public, file, &out);
        fs::remove_file(file).unwrap();
        sealed.push(out.display().to_string());
    }
    let config = |identity: &Path| {
        format!(
            "identity_file = \"{}\"\n[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n",
            identity.display()
        )
    };
    // With an identity that is not the right one: refused, naming it, and nothing is kept.
    sandbox.write_config(&config(&other));
    let mut args = vec!["import", "--database", "app"];
    args.extend(sealed.iter().map(String::as_str));
    let run = sandbox.run(&args);
    run.assert_code(1);
    assert!(
        run.stdout.contains("other.txt") || run.stderr.contains("other.txt"),
        "{run:?}"
    );
    assert!(sandbox.rows_for("app").is_empty(), "nothing recorded");
    // With the right one given on the command line: both imported, kept encrypted; with it
    // configured, they verify and restore.
    let key_arg = key.display().to_string();
    let mut with_key = args.clone();
    with_key.extend(["--identity", &key_arg]);
    let run = sandbox.run(&with_key);
    run.assert_success();
    // What the configured identity (still the other one) cannot open is said, file by file.
    let warnings: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("warning"))
        .collect();
    assert_eq!(warnings.len(), 2, "{run:?}");
    assert!(
        warnings
            .iter()
            .all(|w| w.contains("only --identity opens it") && w.contains("other.txt")),
        "{run:?}"
    );
    sandbox.write_config(&config(&key));
    let rows = sandbox.rows_for("app");
    assert_eq!(rows.len(), 2, "{rows:#?}");
    for row in &rows {
        assert_eq!(row["encrypted"], true, "{row:#}");
        assert_eq!(row["trigger"], "import", "{row:#}");
        let file = assert_success_row(row, "app", "sqlite");
        assert!(file.to_string_lossy().ends_with(".age"), "{file:?}");
        assert!(
            fs::read(&file)
                .unwrap()
                .starts_with(b"age-encryption.org/v1\n")
        );
        let id = row["id"].as_i64().unwrap().to_string();
        sandbox
            .run(&["verify", &id, "--level", "restore"])
            .assert_success();
    }
    let gz_row = rows
        .iter()
        .find(|r| r["compression"] == "gzip")
        .unwrap_or_else(|| panic!("the gzipped file is recorded as gzip: {rows:#?}"));
    let id = gz_row["id"].as_i64().unwrap().to_string();
    let copy = sandbox.path().join("copy.db");
    sandbox
        .run(&["restore", &id, "--to", &copy.display().to_string()])
        .assert_success();
    let original = rusqlite::Connection::open(sandbox.path().join("app.db")).unwrap();
    let restored = rusqlite::Connection::open(&copy).unwrap();
    assert_eq!(sqlite_fingerprint(&restored), sqlite_fingerprint(&original));
    drop(restored);

    // With --identity the same key as the configured one: nothing to warn of.
    let third = old.join("sqlite_backup_20250103_000000.db.age");
    age_encrypt(&public, &copy, &third);
    let run = sandbox.run(&[
        "import",
        "--database",
        "app",
        "--identity",
        &key_arg,
        &third.display().to_string(),
    ]);
    run.assert_success();
    assert!(run.stdout.contains("imported  #"), "{run:?}");
    assert!(!run.stdout.contains("warning"), "{run:?}");
}
