//! `dbkeep doctor`: the whole setup checked end to end, before the first night's backup
//! fails. Each check says ok, warn or fail, what it found and what to do. The databases are
//! asked by their engines ([`dbkeep_engine::engine::Engine::health`]); the rest is here: the
//! backup folder, the catalog and its clock, each off-site destination (a probe object put,
//! read back and deleted), the notification channels, the age keys and the time zone.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use dbkeep_config::config::{CatalogLocation, Config, Encryption};
use dbkeep_model::cancel::Cancel;
use dbkeep_model::catalog::{ListFilter, Status};
use dbkeep_model::health::{Finding, Level};
use dbkeep_model::storage;

use crate::runner::Runner;

/// How `dbkeep doctor` is asked.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Send a test notification to each channel that takes one, instead of only connecting.
    pub send: bool,
}

/// How long a notification server or the catalog's clock may take to answer.
const REACH_LIMIT: Duration = Duration::from_secs(5);
/// How far this machine's clock may be from the catalog's before it is a warning, then a
/// failure (leases expire by the catalog's clock).
const CLOCK_WARN: Duration = Duration::from_secs(2);
const CLOCK_FAIL: Duration = Duration::from_secs(30);

/// Every check of `config`, in the order a newcomer meets them, with its runner (`Err`: why
/// its catalog could not be opened; the checks that need the catalog are left out then).
pub fn check(
    config: &Config,
    runner: std::result::Result<&Runner, String>,
    opts: Options,
) -> Vec<Finding> {
    let mut found = vec![Finding::ok(
        "configuration",
        format!(
            "{}: {} database(s), {} off-site destination(s)",
            config.path.display(),
            config.databases.len(),
            config.offsite.len()
        ),
    )];
    match &runner {
        Ok(runner) => {
            found.push(catalog(config));
            found.extend(clock(runner));
        }
        Err(e) => found.push(Finding::bad(
            Level::Fail,
            "catalog",
            e.clone(),
            "check `catalog` (a PostgreSQL catalog's server, its password in catalog_password_env)",
        )),
    }
    found.push(time_zone(config));
    for db in &config.databases {
        let engine = dbkeep_engine::engine::for_database(config, db);
        found.extend(engine.health(&format!("database {}", db.name), &Cancel::new()));
    }
    found.extend(folder(config));
    if let Ok(runner) = runner {
        found.push(room(runner, &config.backup_dir));
        found.extend(offsite(runner));
        found.extend(notifications(runner, opts));
    }
    found.extend(encryption(config));
    found
}

/// The worst level among `found` (ok when there is nothing).
pub fn worst(found: &[Finding]) -> Level {
    if found.iter().any(|f| f.level == Level::Fail) {
        Level::Fail
    } else if found.iter().any(|f| f.level == Level::Warn) {
        Level::Warn
    } else {
        Level::Ok
    }
}

fn catalog(config: &Config) -> Finding {
    // Opening the runner opened and migrated the catalog: it is reachable and current.
    let at = match &config.catalog {
        CatalogLocation::Sqlite(path) => format!("the SQLite file {}", path.display()),
        CatalogLocation::Postgres(server) => format!("PostgreSQL at {}", server.url),
    };
    Finding::ok(
        "catalog",
        format!(
            "{at}: reachable, its schema current for dbkeep {}",
            env!("CARGO_PKG_VERSION")
        ),
    )
}

fn clock(runner: &Runner) -> Option<Finding> {
    let check = "clock against the catalog's";
    let asked_at = chrono::Utc::now();
    let theirs = match runner.catalog().server_time() {
        Ok(Some(t)) => t,
        Ok(None) => return None,
        Err(e) => {
            return Some(Finding::bad(
                Level::Warn,
                check,
                format!("cannot read the catalog server's clock: {e}"),
                "check the catalog's server",
            ));
        }
    };
    let mine = asked_at + (chrono::Utc::now() - asked_at) / 2;
    let off = (mine - theirs).abs().to_std().unwrap_or_default();
    let detail = format!(
        "this machine's clock is {} {} the catalog server's",
        humantime::format_duration(Duration::from_millis(off.as_millis() as u64)),
        if mine > theirs { "ahead of" } else { "behind" }
    );
    let fix = "run a time service (chrony, systemd-timesyncd) on this machine and on the catalog's server: leases and audit rows are dated by the catalog's clock";
    Some(if off > CLOCK_FAIL {
        Finding::bad(Level::Fail, check, detail, fix)
    } else if off > CLOCK_WARN {
        Finding::bad(Level::Warn, check, detail, fix)
    } else {
        Finding::ok(check, detail)
    })
}

fn time_zone(config: &Config) -> Finding {
    let zone = config.service.timezone;
    let machine = iana_time_zone::get_timezone().unwrap_or_else(|_| "unknown".into());
    let detail = format!(
        "schedules are read in {zone}; this machine's zone is {machine}; now {}",
        chrono::Utc::now()
            .with_timezone(&zone)
            .format("%Y-%m-%d %H:%M %Z")
    );
    Finding::ok("time zone", detail)
}

/// The backup folder: there (or creatable), private, writable, and with room for two more
/// backups of every database at their last sizes.
fn folder(config: &Config) -> Vec<Finding> {
    let dir = &config.backup_dir;
    let shown = dir.display();
    let mut found = Vec::new();
    let check = "backup folder";
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            found.push(match nearest_parent(dir).map(|p| (probe_write(&p), p)) {
                Some((Ok(()), _)) => Finding::ok(
                    check,
                    format!("{shown} is not there yet: the first backup makes it (0700)"),
                ),
                Some((Err(e), parent)) => Finding::bad(
                    Level::Fail,
                    check,
                    format!(
                        "{shown} is not there, and {} cannot be written to make it: {e}",
                        parent.display()
                    ),
                    "make the folder, owned by the user dbkeep runs as",
                ),
                None => Finding::bad(
                    Level::Fail,
                    check,
                    format!("{shown} is not there, nor any folder above it"),
                    "point backup_dir at a folder on a mounted disk",
                ),
            });
        }
        Err(e) => {
            found.push(Finding::bad(
                Level::Fail,
                check,
                format!("{shown}: {e}"),
                "give the user dbkeep runs as access to it",
            ));
            return found;
        }
        Ok(meta) if !meta.is_dir() => {
            found.push(Finding::bad(
                Level::Fail,
                check,
                format!("{shown} is not a folder"),
                "point backup_dir at a folder",
            ));
            return found;
        }
        Ok(meta) => {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            found.push(match probe_write(dir) {
                Err(e) => Finding::bad(
                    Level::Fail,
                    check,
                    format!("{shown} cannot be written: {e}"),
                    "give the user dbkeep runs as write access to it (and mount it read-write)",
                ),
                Ok(()) if mode & 0o077 != 0 => Finding::bad(
                    Level::Warn,
                    check,
                    format!("{shown} is writable, but others may look inside (mode {mode:o})"),
                    format!("chmod 700 {shown}"),
                ),
                Ok(()) => Finding::ok(check, format!("{shown}: writable, private (mode {mode:o})")),
            });
        }
    }
    found
}

/// The nearest folder above `dir` that exists.
fn nearest_parent(dir: &Path) -> Option<std::path::PathBuf> {
    dir.ancestors()
        .skip(1)
        .find(|p| p.is_dir())
        .map(Path::to_path_buf)
}

/// Writes and removes a small private file in `dir`.
fn probe_write(dir: &Path) -> std::io::Result<()> {
    let token = dbkeep_model::token::random_token().map_err(std::io::Error::other)?;
    let path = dir.join(format!(".dbkeep-doctor-{}", &token[..12.min(token.len())]));
    let written = storage::create_private_file(&path)
        .and_then(|mut f| f.write_all(b"dbkeep doctor\n").and_then(|()| f.sync_all()));
    let removed = storage::remove_if_exists(&path);
    written.and(removed)
}

fn room(runner: &Runner, dir: &Path) -> Finding {
    let check = "backup folder: room";
    let config = runner.config();
    let mut need: u64 = 0;
    for db in &config.databases {
        let last = runner.catalog().list(&ListFilter {
            database: Some(db.name.clone()),
            status: Some(Status::Success),
            before: None,
            limit: Some(1),
        });
        if let Ok(last) = last {
            need += 2 * last.first().and_then(|r| r.size_bytes).unwrap_or(0);
        }
    }
    let need = need + config.min_free_space;
    let shown = indicatif::HumanBytes;
    match storage::free_space(dir) {
        Err(e) => Finding::bad(
            Level::Warn,
            check,
            format!("cannot tell how much of its disk is free: {e}"),
            "check the disk by hand (df)",
        ),
        Ok(free) if free < need => Finding::bad(
            Level::Fail,
            check,
            format!(
                "{} free, less than two more backups of every database at their last sizes and min_free_space ({})",
                shown(free),
                shown(need)
            ),
            "free space on that disk, move backup_dir to a larger one, or keep fewer backups",
        ),
        Ok(free) => Finding::ok(
            check,
            format!(
                "{} free, room for two more backups of every database at their last sizes ({})",
                shown(free),
                shown(need)
            ),
        ),
    }
}

/// Each off-site destination: a probe object put, read back and deleted.
fn offsite(runner: &Runner) -> Vec<Finding> {
    let config = runner.config();
    config
        .offsite
        .iter()
        .map(|o| {
            let check = format!("off-site {}", o.name);
            let fix =
                "check the destination's url, its credentials and that it is reachable from here";
            let Some(store) = runner.offsite().store(&o.name) else {
                return Finding::bad(Level::Fail, check, "cannot open its store".to_string(), fix);
            };
            match probe_store(store.as_ref(), &config.backup_dir, &runner.instance().name) {
                Ok(()) => Finding::ok(check, "a probe object was put, read back and deleted"),
                Err(e) => Finding::bad(Level::Fail, check, e, fix),
            }
        })
        .collect()
}

/// Puts a small object into `store`, reads it back, deletes it, and checks it is gone.
fn probe_store(
    store: &dyn dbkeep_store::store::Store,
    scratch: &Path,
    instance: &str,
) -> Result<(), String> {
    let token = dbkeep_model::token::random_token().map_err(|e| e.to_string())?;
    let body = format!("dbkeep doctor probe {token}\n");
    let dir = if scratch.is_dir() {
        scratch.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let file = dir.join(format!(
        ".dbkeep-doctor-probe-{}",
        &token[..12.min(token.len())]
    ));
    storage::create_private_file(&file)
        .and_then(|mut f| f.write_all(body.as_bytes()))
        .map_err(|e| format!("cannot write the probe file {}: {e}", file.display()))?;
    let key = format!(
        ".dbkeep-doctor/{instance}-{}",
        &token[..12.min(token.len())]
    );
    let cancel = Cancel::new();
    let sent = store
        .put_file(
            &key,
            &file,
            dbkeep_store::store::Sending {
                progress: &dbkeep_model::stream::NoProgress,
                cancel: &cancel,
            },
        )
        .map_err(|e| format!("put: {e}"));
    let _ = storage::remove_if_exists(&file);
    sent?;
    let mut back = String::new();
    let read = store
        .open(&key)
        .map_err(|e| format!("read back: {e}"))
        .and_then(|r| {
            r.take(4096)
                .read_to_string(&mut back)
                .map_err(|e| format!("read back: {e}"))
        });
    let deleted = store.delete(&key).map_err(|e| format!("delete: {e}"));
    read?;
    deleted?;
    if back != body {
        return Err("the probe object read back differs from what was put".into());
    }
    if store.exists(&key).unwrap_or(false) {
        return Err("the probe object is still there after its delete".into());
    }
    Ok(())
}

/// Each notification channel: its server answers (or, with `send`, a test event delivered).
fn notifications(runner: &Runner, opts: Options) -> Vec<Finding> {
    let fix = "check the channel's URL (or smtp_url) and that its server is reachable from here";
    if opts.send {
        return runner
            .notifier()
            .test()
            .into_iter()
            .map(|(name, sent)| match sent {
                Ok(()) => Finding::ok(format!("notify {name}"), "a test event was delivered"),
                Err(e) => Finding::bad(Level::Fail, format!("notify {name}"), e, fix),
            })
            .collect();
    }
    runner
        .notifier()
        .reach(REACH_LIMIT)
        .into_iter()
        .map(|(name, reached)| match reached {
            Ok(detail) => Finding::ok(
                format!("notify {name}"),
                format!("{detail} (nothing sent; --send sends a test event)"),
            ),
            Err(e) => Finding::bad(Level::Fail, format!("notify {name}"), e, fix),
        })
        .collect()
}

/// The age keys: each passphrase variable set, and the identity file opening what the
/// databases are encrypted to.
fn encryption(config: &Config) -> Vec<Finding> {
    let mut found = Vec::new();
    let identity = config.identity_file.as_deref().map(|path| {
        (
            path,
            dbkeep_pipeline::crypt::Keys::read_identity_file(path).map_err(|e| e.to_string()),
        )
    });
    if let Some((path, Err(e))) = &identity {
        found.push(Finding::bad(
            Level::Fail,
            "age identity",
            format!("{}: {e}", path.display()),
            "give the file `age-keygen -o` wrote as identity_file",
        ));
    }
    for db in &config.databases {
        let Some(encryption) = &db.encryption else {
            continue;
        };
        let check = format!("database {}: encryption", db.name);
        let finding = match encryption {
            Encryption::Passphrase { env } => match dbkeep_config::config::passphrase(env) {
                Ok(_) => Finding::ok(check, format!("with the passphrase in ${env}")),
                Err(e) => Finding::bad(
                    Level::Fail,
                    check,
                    e,
                    format!(
                        "set {env} in the environment dbkeep runs in (an EnvironmentFile under systemd)"
                    ),
                ),
            },
            Encryption::Recipients(keys) => match &identity {
                None => Finding::ok(
                    check,
                    format!(
                        "to {} age recipient(s); no identity_file here, so restores need --identity",
                        keys.len()
                    ),
                ),
                Some((_, Err(_))) => continue,
                Some((path, Ok(opener))) => {
                    if keys.iter().any(|k| opens(opener, k)) {
                        Finding::ok(
                            check,
                            format!(
                                "to {} age recipient(s), which {} opens",
                                keys.len(),
                                path.display()
                            ),
                        )
                    } else {
                        Finding::bad(
                            Level::Fail,
                            check,
                            format!(
                                "{} opens none of its {} recipient(s): its backups cannot be verified (the weekly drills fail) or restored here",
                                path.display(),
                                keys.len()
                            ),
                            "set identity_file to the identity of one of its age_recipients (age-keygen -y shows an identity's recipient)",
                        )
                    }
                }
            },
        };
        found.push(finding);
    }
    found
}

/// Whether `keys` open what is encrypted to `recipient`: a short message is, and is opened.
fn opens(keys: &dbkeep_pipeline::crypt::Keys, recipient: &str) -> bool {
    let Ok(encryptor) =
        dbkeep_pipeline::crypt::encryptor(&Encryption::Recipients(vec![recipient.to_string()]))
    else {
        return false;
    };
    let mut sealed = Vec::new();
    let written = encryptor
        .wrap_output(&mut sealed)
        .and_then(|mut w| w.write_all(b"dbkeep doctor").and_then(|()| w.finish()));
    if written.is_err() {
        return false;
    }
    let mut plain = Vec::new();
    keys.decrypt(Box::new(std::io::Cursor::new(sealed)))
        .and_then(|mut r| r.read_to_end(&mut plain))
        .is_ok_and(|_| plain == b"dbkeep doctor")
}
