//! MySQL and MariaDB: `mariadb-dump` (or `mysqldump`) as a child process, its SQL streamed to
//! the pipeline, and the `mariadb` (or `mysql`) client to load and to ask the server.
//!
//! The dump is consistent for InnoDB tables while the application writes
//! (`--single-transaction`), streamed row by row (`--quick`), and holds routines, triggers and
//! events. The password reaches the tools only through `MYSQL_PWD` in their environment; their
//! command lines carry none.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::Engine;
use super::child::{Family, Feed, Tool};
use dbkeep_config::config::{Secret, ServerTarget};
use dbkeep_model::cancel::Cancel;
use dbkeep_model::catalog::Kind;
use dbkeep_model::error::{Error, Result};
use dbkeep_model::runlog::RunLog;
use dbkeep_model::stream::RowFormat;
use dbkeep_model::stream::TableRows;

/// What the tools are told to do for a dump that restores on another server of the family.
const DUMP_OPTIONS: &[&str] = &[
    // One consistent snapshot of InnoDB tables, without locking them.
    "--single-transaction",
    // Rows streamed one at a time, never buffered whole in the tool.
    "--quick",
    "--routines",
    "--triggers",
    "--events",
    // Binary columns as hex literals: immune to character-set conversions on the way.
    "--hex-blob",
    "--default-character-set=utf8mb4",
    // No tablespace statements: they need the PROCESS privilege and tie a dump to a server.
    "--no-tablespaces",
];

const DUMP_HINT: &str =
    "install the MariaDB or MySQL client tools (Debian: mariadb-client), or set mysqldump_path";
const CLIENT_HINT: &str =
    "install the MariaDB or MySQL client tools (Debian: mariadb-client), or set mysql_path";

/// Table engines whose rows `--single-transaction` copies consistently while others write.
const TRANSACTIONAL: &[&str] = &["InnoDB", "ROCKSDB", "TokuDB"];

/// Backs up one MySQL or MariaDB database.
/// Who the user is, as `information_schema`'s `GRANTEE` column writes it (`'app'@'%'`).
const GRANTEE: &str = "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')";

/// The privileges a complete dump of any schema needs (`dbkeep discover` checks them).
const DUMP_PRIVILEGES: &[&str] = &[
    "SELECT",
    "SHOW VIEW",
    "TRIGGER",
    "EVENT",
    "LOCK TABLES",
    "PROCESS",
];

pub struct MysqlEngine {
    target: ServerTarget,
    dump: PathBuf,
    client: PathBuf,
}

impl MysqlEngine {
    /// An engine for `target`, with the dump tool and client at `dump` and `client` (a path
    /// or a name on `PATH`; `None`: `mariadb-dump` and `mariadb` when on `PATH`, else
    /// `mysqldump` and `mysql`).
    pub fn new(target: ServerTarget, dump: Option<PathBuf>, client: Option<PathBuf>) -> Self {
        MysqlEngine {
            target,
            dump: dump.unwrap_or_else(|| first_on_path("mariadb-dump", "mysqldump")),
            client: client.unwrap_or_else(|| first_on_path("mariadb", "mysql")),
        }
    }

    /// The database's name, as the URL's path gives it.
    pub fn database(&self) -> String {
        self.target.database()
    }

    /// The options that reach the server: user, host and port from the URL, and each of its
    /// parameters as `--key=value` (`socket`, `ssl-mode`, …).
    fn connection(&self) -> Vec<String> {
        let url = &self.target.url;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let mut args = Vec::new();
        if !url.username().is_empty() {
            args.push(format!("--user={}", decode(url.username())));
        }
        if let Some(host) = url.host_str().filter(|h| !h.is_empty()) {
            args.push(format!(
                "--host={}",
                host.trim_start_matches('[').trim_end_matches(']')
            ));
        }
        if let Some(port) = url.port() {
            args.push(format!("--port={port}"));
        }
        for (key, value) in url.query_pairs() {
            args.push(if value.is_empty() {
                format!("--{key}")
            } else {
                format!("--{key}={value}")
            });
        }
        args
    }

    fn password(&self) -> Result<Option<Secret>> {
        self.target.resolve_password().map_err(Error::Engine)
    }

    /// Runs `sql` with the client (on the target database when `in_database`) and returns
    /// its rows, tab-separated, without a header.
    fn query(&self, sql: &str, in_database: bool, cancel: &Cancel) -> Result<String> {
        self.query_with(sql, &[], in_database, cancel)
    }

    /// [`MysqlEngine::query`] with more client options (`extra`).
    fn query_with(
        &self,
        sql: &str,
        extra: &[String],
        in_database: bool,
        cancel: &Cancel,
    ) -> Result<String> {
        let mut args = self.connection();
        args.extend(extra.iter().cloned());
        args.extend(["--batch", "--skip-column-names", "--raw"].map(String::from));
        args.push(format!("--execute={sql}"));
        if in_database {
            args.push(format!("--database={}", self.database()));
        }
        let tool = Tool::spawn(
            &self.client,
            Family::Mysql,
            &args,
            self.password()?,
            false,
            cancel,
            CLIENT_HINT,
        )?;
        let mut out = String::new();
        if let Some(mut stdout) = tool.stdout() {
            let _ = stdout.read_to_string(&mut out);
        }
        tool.finish(cancel, &RunLog::new())?;
        Ok(out.trim_end().to_string())
    }

    /// Drops the databases on this server named with `prefix` ([`crate::throwaway`]) that a
    /// killed process of this machine left; returns their names.
    ///
    /// # Errors
    /// When the server cannot be asked, or one cannot be dropped.
    pub fn drop_orphans(&self, prefix: &str) -> Result<Vec<String>> {
        let names = self.databases_named_like(&crate::throwaway::like(prefix))?;
        crate::throwaway::drop_orphans(names, |name| {
            MysqlEngine::new(
                crate::throwaway::on_server(&self.target, name),
                Some(self.dump.clone()),
                Some(self.client.clone()),
            )
            .discard(&Cancel::new())
        })
    }

    /// The schemas of this server the user can see (MySQL shows a user only those it has a
    /// privilege on), system schemas included: discovery leaves those out.
    ///
    /// # Errors
    /// When the server cannot be reached or refuses the login: its words.
    pub fn list_databases(&self) -> Result<super::listing::Listing> {
        let wait = [format!(
            "--connect-timeout={}",
            super::listing::CONNECT_TIMEOUT_SECS
        )];
        let out = self.query_with(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME",
            &wait,
            false,
            &Cancel::new(),
        )?;
        // The privileges a complete dump needs, held on every schema (`ON *.*`).
        let held = self.query_with(
            &format!("SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = {GRANTEE}"),
            &wait,
            false,
            &Cancel::new(),
        )?;
        let held: Vec<&str> = held.lines().map(str::trim).collect();
        let missing: Vec<&str> = DUMP_PRIVILEGES
            .iter()
            .copied()
            .filter(|p| !held.contains(p))
            .collect();
        let warning = (!missing.is_empty()).then(|| {
            format!(
                "the user lacks {} on *.*: a schema it cannot read fully fails its backup; GRANT {} ON *.* TO the user",
                missing.join(", "),
                DUMP_PRIVILEGES.join(", ")
            )
        });
        Ok(super::listing::Listing {
            databases: out
                .lines()
                .filter(|l| !l.is_empty())
                .map(|name| super::listing::Listed {
                    name: name.to_string(),
                    unreadable: None,
                })
                .collect(),
            warning,
        })
    }

    /// The databases on this server whose names match the SQL `LIKE` pattern `pattern`.
    fn databases_named_like(&self, pattern: &str) -> Result<Vec<String>> {
        let out = self.query(
            &format!(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE {}",
                literal(pattern)
            ),
            false,
            &Cancel::new(),
        )?;
        Ok(out
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// The base tables of engines that `--single-transaction` cannot copy consistently.
    fn non_transactional(&self, cancel: &Cancel) -> Result<Vec<String>> {
        let engines = TRANSACTIONAL
            .iter()
            .map(|e| literal(e))
            .collect::<Vec<_>>()
            .join(", ");
        let out = self.query(
            &format!(
                "SELECT CONCAT(TABLE_NAME, ' (', ENGINE, ')') FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = {} AND TABLE_TYPE = 'BASE TABLE' AND ENGINE NOT IN ({engines}) \
                 ORDER BY TABLE_NAME",
                literal(&self.database())
            ),
            false,
            cancel,
        )?;
        Ok(out
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// The target's tables and views: `(name, is_view)`.
    fn objects(&self, cancel: &Cancel) -> Result<Vec<(String, bool)>> {
        let out = self.query(
            &format!(
                "SELECT TABLE_NAME, TABLE_TYPE = 'VIEW' FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = {}",
                literal(&self.database())
            ),
            false,
            cancel,
        )?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(name, view)| (name.to_string(), view == "1"))
            .collect())
    }

    /// The client's option that keeps it from running client commands (`system`, `\!`,
    /// `source`, `tee`…) from its input: MariaDB's `--sandbox`, MySQL's `--commands=OFF`.
    ///
    /// # Errors
    /// [`Error::Refused`] when the client has neither.
    fn sandbox(&self, cancel: &Cancel) -> Result<&'static str> {
        let tool = Tool::spawn(
            &self.client,
            Family::Mysql,
            &["--help".to_string()],
            None,
            false,
            cancel,
            CLIENT_HINT,
        )?;
        let mut help = String::new();
        if let Some(stdout) = tool.stdout() {
            let _ = stdout.take(4 << 20).read_to_string(&mut help);
        }
        tool.finish(cancel, &RunLog::new())?;
        if help.contains("--sandbox") {
            Ok("--sandbox")
        } else if help.contains("--commands") {
            Ok("--commands=OFF")
        } else {
            Err(Error::Refused(format!(
                "{} cannot be kept from running commands from a dump (it has neither MariaDB's --sandbox, from 10.5.25, 10.6.18 and 10.11.8 on, nor MySQL's --commands, from 8.0.40 and 8.4.3 on), so dbkeep does not load a dump with it; install a newer client, or set mysql_path",
                self.client.display()
            )))
        }
    }

    /// Loads `source` into the target with the client, which stops at the first error and
    /// runs no client command from it; with `prologue` first and `epilogue` only after the
    /// whole stream was read (and matched its checksum). The client confirms it ran the
    /// epilogue.
    fn load(
        &self,
        sandbox: &str,
        source: &mut dyn Read,
        prologue: &str,
        epilogue: &str,
        cancel: &Cancel,
        log: &RunLog,
    ) -> Result<u64> {
        let mut args = self.connection();
        args.push(sandbox.to_string());
        args.extend(["--batch", "--default-character-set=utf8mb4"].map(String::from));
        args.push(format!("--database={}", self.database()));
        let marker = format!("dbkeep-loaded-{}", dbkeep_model::token::random_token()?);
        let epilogue = format!("{epilogue}SELECT {};\n", literal(&marker));
        let tool = Tool::spawn(
            &self.client,
            Family::Mysql,
            &args,
            self.password()?,
            true,
            cancel,
            CLIENT_HINT,
        )?;
        tool.stream_in(
            &Feed {
                prologue: prologue.as_bytes(),
                epilogue: epilogue.as_bytes(),
                confirm: marker.as_bytes(),
                stopped: "the load was stopped",
                unconfirmed: "the client ended without running the end of the load: the dump's last statement never ends (an unterminated string or comment took in what followed it)",
            },
            source,
            cancel,
            log,
        )
    }
}

/// The table that marks a database whose restore has not ended: made before anything is
/// replaced, dropped once the whole file has loaded. MySQL commits each statement of a dump
/// on its own, so a restore that is stopped halfway cannot be undone; this says so to whoever
/// looks, and to the next restore.
const INCOMPLETE: &str = "dbkeep_restore_incomplete";

/// `primary` when a program of that name is on `PATH`, else `fallback`.
fn first_on_path(primary: &str, fallback: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| is_program(&dir.join(primary))));
    PathBuf::from(if found { primary } else { fallback })
}

fn is_program(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `text` as a MySQL string literal: quotes doubled, which every `sql_mode` reads as one quote,
/// and backslashes doubled. A server or client in `NO_BACKSLASH_ESCAPES` mode reads a doubled
/// backslash as two (a name with a backslash then matches nothing), but no text can end the
/// literal early in either mode, as `\'` would there.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// `name` as a MySQL identifier.
fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

impl Engine for MysqlEngine {
    fn kind(&self) -> Kind {
        Kind::Mysql
    }

    fn file_name(&self, stamp: &str) -> (String, &'static str) {
        (format!("mysql_backup_{stamp}"), ".sql")
    }

    fn stream_rows(&self) -> Option<RowFormat> {
        // Each table's rows are counted from its INSERT statements as the dump streams by.
        Some(RowFormat::MysqlInsert)
    }

    fn dump(
        &self,
        out: &mut dyn Write,
        _scratch: &Path,
        cancel: &Cancel,
        log: &RunLog,
    ) -> Result<Option<TableRows>> {
        // Tables the snapshot cannot hold still: named with the backup, never silently.
        match self.non_transactional(cancel) {
            Ok(tables) if !tables.is_empty() => {
                let names = tables.join(", ");
                tracing::warn!(database = %self.database(), tables = %names, "tables outside a transactional engine: their rows may be inconsistent if written during the backup");
                log.step(format_args!(
                    "warning: not transactional, so not copied consistently while written: {names}"
                ));
            }
            Ok(_) => {}
            // The dump itself says what is wrong with the connection.
            Err(Error::Cancelled(r)) => return Err(Error::Cancelled(r)),
            Err(_) => {}
        }
        let mut args = self.connection();
        args.extend(DUMP_OPTIONS.iter().map(|s| s.to_string()));
        // The database alone (no --databases): the dump has no CREATE DATABASE or USE, so it
        // loads into a database of any name.
        args.push("--".to_string());
        args.push(self.database());
        let tool = Tool::spawn(
            &self.dump,
            Family::Mysql,
            &args,
            self.password()?,
            false,
            cancel,
            DUMP_HINT,
        )?;
        tool.stream_out(out, "the dump tool", cancel, log)
            .map(|_| None)
    }

    fn count_rows(&self, tables: &[String], cancel: &Cancel) -> Result<TableRows> {
        if tables.is_empty() {
            return Ok(Vec::new());
        }
        let sql = tables
            .iter()
            .enumerate()
            .map(|(i, t)| format!("SELECT {i}, COUNT(*) FROM {}", ident(t)))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let out = self.query(&sql, true, cancel)?;
        let mut counts = vec![0u64; tables.len()];
        for line in out.lines() {
            if let Some((i, n)) = line.split_once('\t')
                && let (Ok(i), Ok(n)) = (i.parse::<usize>(), n.parse::<u64>())
                && i < counts.len()
            {
                counts[i] = n;
            }
        }
        Ok(tables.iter().cloned().zip(counts).collect())
    }

    fn health(&self, what: &str, cancel: &Cancel) -> Vec<dbkeep_model::health::Finding> {
        use dbkeep_model::health::{Finding, Level};
        let mut found = Vec::new();
        let wait = [format!(
            "--connect-timeout={}",
            super::listing::CONNECT_TIMEOUT_SECS
        )];
        let reach = format!("{what}: reachable");
        let server = match self.query_with("SELECT VERSION(), CURRENT_USER()", &wait, false, cancel)
        {
            Ok(line) => line,
            Err(e) => {
                found.push(super::health::unreachable(reach, &e));
                return found;
            }
        };
        let (version, user) = server.split_once('\t').unwrap_or((server.as_str(), ""));
        if !super::Engine::exists(self, cancel).unwrap_or(false) {
            found.push(Finding::bad(
                Level::Fail,
                reach,
                format!("the server has no database {}", self.database()),
                "check the database name in its url",
            ));
            return found;
        }
        found.push(Finding::ok(reach, format!("{} as {user}", self.target.url)));
        found.push(match super::health::tool_version(&self.dump) {
            Ok(tool) => super::health::mysql_dump_fits(what, &tool, version),
            Err(e) => Finding::bad(
                Level::Fail,
                format!("{what}: the dump tool against the server"),
                e,
                DUMP_HINT,
            ),
        });
        // What the user holds on every schema, and on this one.
        let held = self.query_with(
            &format!(
                "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = {GRANTEE} \
                 UNION SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = {GRANTEE} \
                 AND {} LIKE TABLE_SCHEMA",
                literal(&self.database())
            ),
            &wait,
            false,
            cancel,
        );
        let check = format!("{what}: privileges");
        found.push(match held {
            Ok(held) => {
                let held: Vec<&str> = held.lines().map(str::trim).collect();
                // PROCESS is the server's own and only for tablespaces, which a dump of one
                // database leaves out.
                let missing: Vec<&str> = DUMP_PRIVILEGES
                    .iter()
                    .copied()
                    .filter(|p| *p != "PROCESS" && !held.contains(p))
                    .collect();
                if missing.is_empty() {
                    Finding::ok(check, format!("{user} holds what a dump needs"))
                } else {
                    Finding::bad(
                        Level::Fail,
                        check,
                        format!(
                            "{user} lacks {} on {}: its dump fails",
                            missing.join(", "),
                            self.database()
                        ),
                        format!(
                            "GRANT {} ON `{}`.* TO the user",
                            missing.join(", "),
                            self.database()
                        ),
                    )
                }
            }
            Err(e) => Finding::bad(
                Level::Warn,
                check,
                e.to_string(),
                "check the user's privileges by hand",
            ),
        });
        found
    }

    fn exists(&self, cancel: &Cancel) -> Result<bool> {
        let found = self.query(
            &format!(
                "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}",
                literal(&self.database())
            ),
            false,
            cancel,
        )?;
        Ok(found == "1")
    }

    fn table_count(&self, cancel: &Cancel) -> Result<u64> {
        let out = self.query(
            &format!(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} \
                 AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME <> {}",
                literal(&self.database()),
                literal(INCOMPLETE)
            ),
            false,
            cancel,
        )?;
        out.parse()
            .map_err(|_| Error::Engine(format!("cannot count the tables: the client said `{out}`")))
    }

    fn discard(&self, cancel: &Cancel) -> Result<()> {
        self.query(
            &format!("DROP DATABASE IF EXISTS {}", ident(&self.database())),
            false,
            cancel,
        )
        .map(drop)
    }

    fn restore(
        &self,
        source: &mut dyn Read,
        _reopen: Option<super::Reopen<'_>>,
        opts: &super::RestoreOptions,
        cancel: &Cancel,
        log: &RunLog,
    ) -> Result<usize> {
        // Before anything is touched: a client that could run a dump's commands loads nothing.
        let sandbox = self.sandbox(cancel)?;
        let name = self.database();
        let exists = super::Engine::exists(self, cancel)?;
        let mut created = false;
        if !exists {
            if !opts.create {
                return Err(Error::Refused(format!(
                    "database {name} does not exist on the server; create it, or pass --create"
                )));
            }
            self.query(
                &format!("CREATE DATABASE {} CHARACTER SET utf8mb4", ident(&name)),
                false,
                cancel,
            )?;
            log.step(format_args!("created database {name}"));
            created = true;
        }
        let objects = if created {
            Vec::new()
        } else {
            self.objects(cancel)?
        };
        if !objects.is_empty() && !opts.force {
            let why = if objects.iter().any(|(o, _)| o == INCOMPLETE) {
                format!(
                    "database {name} holds an incomplete restore (a restore into it stopped before its end: the table {INCOMPLETE} marks it)"
                )
            } else {
                format!("database {name} has {} table(s) or view(s)", objects.len())
            };
            return Err(Error::Refused(format!(
                "{why}; pass --force to replace its contents, or restore into a new database with --create"
            )));
        }
        let marker = format!("{}.{}", ident(&name), ident(INCOMPLETE));
        // The mark first, then what the target holds goes, so that it ends as the backup was.
        let mut prologue = format!(
            "SET FOREIGN_KEY_CHECKS = 0;\nCREATE TABLE IF NOT EXISTS {marker} (started_at VARCHAR(40), note VARCHAR(200));\nINSERT INTO {marker} VALUES ({}, 'a dbkeep restore into this database has not ended: its contents are partial');\n",
            literal(&chrono::Utc::now().to_rfc3339())
        );
        for (object, view) in objects.iter().filter(|(o, _)| o != INCOMPLETE) {
            let what = if *view { "VIEW" } else { "TABLE" };
            prologue.push_str(&format!("DROP {what} IF EXISTS {};\n", ident(object)));
        }
        prologue.push_str("SET FOREIGN_KEY_CHECKS = 1;\n");
        if !objects.is_empty() {
            log.step(format_args!(
                "replacing the {} table(s) and view(s) of {name} (--force)",
                objects.len()
            ));
        }
        let epilogue = format!("DROP TABLE IF EXISTS {marker};\n");
        match self.load(sandbox, source, &prologue, &epilogue, cancel, log) {
            Ok(bytes) => {
                log.step(format_args!(
                    "loaded {} into {name}",
                    indicatif::HumanBytes(bytes)
                ));
                Ok(1)
            }
            Err(e) => {
                if created {
                    // A failed load into a database of its own making leaves none behind.
                    let _ = self.discard(&Cancel::new());
                    log.step(format_args!(
                        "dropped database {name} after the failed load"
                    ));
                } else {
                    log.step(format_args!(
                        "the load stopped part way: {name} is marked by the table {INCOMPLETE} until a restore into it ends"
                    ));
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn engine(url: &str) -> MysqlEngine {
        let dbkeep_config::config::Target::Mysql(target) =
            dbkeep_config::config::Target::parse(url, Path::new("/")).unwrap()
        else {
            panic!("not a mysql target");
        };
        MysqlEngine::new(target, Some("d".into()), Some("c".into()))
    }

    #[test]
    fn the_url_becomes_options_and_never_a_password() {
        let e = engine(
            "mysql://app:s3cret@db.example:3307/shop?socket=/run/mysqld/mysqld.sock&ssl-mode=REQUIRED",
        );
        assert_eq!(
            e.connection(),
            [
                "--user=app",
                "--host=db.example",
                "--port=3307",
                "--socket=/run/mysqld/mysqld.sock",
                "--ssl-mode=REQUIRED"
            ]
        );
        assert_eq!(e.database(), "shop");
        assert_eq!(e.password().unwrap().unwrap().expose(), "s3cret");
    }

    #[test]
    fn names_and_strings_are_quoted() {
        assert_eq!(ident("we`ird"), "`we``ird`");
        assert_eq!(literal("it's a \\ test"), "'it''s a \\\\ test'");
        // A backslash before a quote cannot escape the closing quote, in either mode.
        assert_eq!(
            literal("x\\'; DROP DATABASE y; --"),
            "'x\\\\''; DROP DATABASE y; --'"
        );
    }
}
