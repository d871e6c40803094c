//! PostgreSQL: `pg_dump` in plain SQL as a child process, its output streamed to the pipeline.
//!
//! The password reaches `pg_dump` only through `PGPASSWORD` in its environment; the URL on
//! its command line carries none, and `--no-password` stops it from ever waiting on a prompt.

mod load;
mod parallel;
mod roles;

use std::io::Write;
use std::path::{Path, PathBuf};

use super::Engine;
use super::child::{Family, Feed, Tool};
use dbkeep_config::config::ServerTarget;
use dbkeep_model::cancel::Cancel;
use dbkeep_model::catalog::Kind;
use dbkeep_model::error::{Error, Result};
use dbkeep_model::runlog::RunLog;
use dbkeep_model::stream::RowFormat;
use dbkeep_model::stream::TableRows;

/// Backs up one PostgreSQL database with `pg_dump`.
pub struct PostgresEngine {
    target: ServerTarget,
    pg_dump: PathBuf,
}

impl PostgresEngine {
    /// An engine for `target`, running the `pg_dump` program at `pg_dump` (a path or a name on `PATH`).
    pub fn new(target: ServerTarget, pg_dump: PathBuf) -> Self {
        PostgresEngine { target, pg_dump }
    }

    /// `psql`: beside `pg_dump` when that is a path holding one, else from `PATH`.
    fn psql(&self) -> PathBuf {
        self.sibling("psql")
    }

    /// A PostgreSQL client program beside `pg_dump` when that is a path holding it, else from
    /// `PATH`.
    pub(crate) fn sibling(&self, program: &str) -> PathBuf {
        match self.pg_dump.parent() {
            Some(dir) if !dir.as_os_str().is_empty() && dir.join(program).exists() => {
                dir.join(program)
            }
            _ => PathBuf::from(program),
        }
    }

    /// `psql` loading its input into the target: stopping at the first error, committing
    /// what its input commits (see [`load`] for the transaction the load brings).
    fn loader(&self, cancel: &Cancel) -> Result<Tool> {
        let password = self.target.resolve_password().map_err(Error::Engine)?;
        let args = [
            "-X".to_string(),
            "-q".to_string(),
            "-v".to_string(),
            "ON_ERROR_STOP=1".to_string(),
            "--no-password".to_string(),
            format!("--dbname={}", self.target.url),
        ];
        Tool::spawn(
            &self.psql(),
            Family::Postgres,
            &args,
            password,
            true,
            cancel,
            PSQL_HINT,
        )
    }

    /// Drops the databases on this server named with `prefix` ([`crate::throwaway`]) that a
    /// killed process of this machine left; returns their names.
    ///
    /// # Errors
    /// When the server cannot be asked, or one cannot be dropped.
    pub fn drop_orphans(&self, prefix: &str) -> Result<Vec<String>> {
        let names = self.databases_named_like(&crate::throwaway::like(prefix))?;
        crate::throwaway::drop_orphans(names, |name| {
            PostgresEngine::new(
                crate::throwaway::on_server(&self.target, name),
                self.pg_dump.clone(),
            )
            .discard(&Cancel::new())
        })
    }

    /// The databases on this server whose names match the SQL `LIKE` pattern `pattern`.
    fn databases_named_like(&self, pattern: &str) -> Result<Vec<String>> {
        let out = self.query(
            &self.admin(),
            &format!(
                "SELECT datname FROM pg_database WHERE datname LIKE {}",
                literal(pattern)
            ),
            &Cancel::new(),
        )?;
        Ok(out
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect())
    }

    /// The databases of this server that accept connections, templates left out, and
    /// whether the user may connect to each (on the URL's database, `postgres` by default).
    ///
    /// # Errors
    /// When the server cannot be reached or refuses the login: its words.
    pub fn list_databases(&self) -> Result<super::listing::Listing> {
        let url = super::listing::with_connect_timeout(&self.target.url);
        // One field per line: a name may hold any character but a newline.
        let out = self.query(
            &url,
            "SELECT 'u' || (SELECT CASE WHEN rolsuper THEN 't' WHEN current_setting('server_version_num')::int < 140000 THEN 't' WHEN pg_has_role(current_user, 'pg_read_all_data', 'USAGE') THEN 't' ELSE 'f' END FROM pg_roles WHERE rolname = current_user) || current_user \
             UNION ALL (SELECT CASE WHEN has_database_privilege(oid, 'CONNECT') THEN 't' ELSE 'f' END || datname FROM pg_database \
             WHERE datallowconn AND NOT datistemplate AND datname NOT LIKE '%' || chr(10) || '%' ORDER BY datname)",
            &Cancel::new(),
        )?;
        let mut listing = super::listing::Listing::default();
        for line in out.lines().filter(|l| !l.is_empty()) {
            if let Some(user) = line.strip_prefix('u') {
                if let Some(name) = user.strip_prefix('f') {
                    listing.warning = Some(format!(
                        "the user `{name}` is neither a superuser nor a member of pg_read_all_data: a table it cannot read fails its database's backup; GRANT pg_read_all_data TO {name}"
                    ));
                }
                continue;
            }
            let (ok, name) = line.split_at(1);
            listing.databases.push(super::listing::Listed {
                name: name.to_string(),
                unreadable: (ok == "f").then(|| {
                    format!("permission denied for database \"{name}\": the user does not have CONNECT privilege (GRANT CONNECT ON DATABASE \"{name}\" TO the user)")
                }),
            });
        }
        Ok(listing)
    }

    /// Runs one SQL statement with `psql` on `url` and returns what it printed (tuples only).
    pub(crate) fn query(&self, url: &url::Url, sql: &str, cancel: &Cancel) -> Result<String> {
        let password = self.target.resolve_password().map_err(Error::Engine)?;
        let args = [
            "-X".to_string(),
            "-tA".to_string(),
            "-v".to_string(),
            "ON_ERROR_STOP=1".to_string(),
            "--no-password".to_string(),
            format!("--dbname={url}"),
            "-c".to_string(),
            sql.to_string(),
        ];
        let tool = Tool::spawn(
            &self.psql(),
            Family::Postgres,
            &args,
            password,
            false,
            cancel,
            PSQL_HINT,
        )?;
        let mut out = String::new();
        if let Some(mut stdout) = tool.stdout() {
            let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        }
        tool.finish(cancel, &RunLog::new())?;
        Ok(out.trim().to_string())
    }
}

const PG_DUMP_HINT: &str = "install the PostgreSQL client tools (Debian: postgresql-client) of the server's version or newer, or set pg_dump_path";

const PSQL_HINT: &str =
    "install the PostgreSQL client tools and put psql on PATH (or beside pg_dump_path)";

/// `text` as an SQL string literal: an escape string (`E'…'`) with quotes and backslashes
/// doubled, which reads the same whether the server's `standard_conforming_strings` is on or off
/// (a plain `'…'` would let `\'` end it early when off).
fn literal(text: &str) -> String {
    format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// Drops every schema but PostgreSQL's own and makes an empty `public`: run before the load in
/// the same transaction, so a failed load leaves the old contents in place.
const REPLACE_CONTENTS: &str = "SET client_min_messages = warning;
DO $dbkeep$ DECLARE s text; BEGIN
  FOR s IN SELECT nspname FROM pg_namespace
           WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', s);
  END LOOP;
END $dbkeep$;
CREATE SCHEMA public;
DO $dbkeep$ BEGIN ALTER SCHEMA public OWNER TO pg_database_owner;
  EXCEPTION WHEN undefined_object THEN NULL; END $dbkeep$;
GRANT USAGE ON SCHEMA public TO PUBLIC;
RESET client_min_messages;
";

impl Engine for PostgresEngine {
    fn kind(&self) -> Kind {
        Kind::Postgres
    }

    fn file_name(&self, stamp: &str) -> (String, &'static str) {
        (format!("postgres_backup_{stamp}"), ".sql")
    }

    fn stream_rows(&self) -> Option<RowFormat> {
        // Each table's rows are counted from its COPY block as the dump streams by.
        Some(RowFormat::PgCopy)
    }

    fn dump(
        &self,
        out: &mut dyn Write,
        _scratch: &Path,
        cancel: &Cancel,
        log: &RunLog,
    ) -> Result<Option<TableRows>> {
        let password = self.target.resolve_password().map_err(Error::Engine)?;
        let args = [
            "--no-password".to_string(),
            "--format=plain".to_string(),
            format!("--dbname={}", self.target.url),
        ];
        let tool = Tool::spawn(
            &self.pg_dump,
            Family::Postgres,
            &args,
            password,
            false,
            cancel,
            "install the PostgreSQL client tools and put pg_dump on PATH, or set pg_dump_path",
        )?;
        tool.stream_out(out, "pg_dump", cancel, log).map(|_| None)
    }

    fn count_rows(&self, tables: &[String], cancel: &Cancel) -> Result<TableRows> {
        if tables.is_empty() {
            return Ok(Vec::new());
        }
        // The names as the dump wrote them: schema-qualified and quoted where needed.
        let sql = tables
            .iter()
            .enumerate()
            // ONLY: a COPY block holds a table's own rows, not its inheritance children's.
            .map(|(i, t)| format!("SELECT {i}, count(*) FROM ONLY {t}"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let out = self.query(&self.target.url, &sql, cancel)?;
        let mut counts = vec![0u64; tables.len()];
        for line in out.lines() {
            if let Some((i, n)) = line.split_once('|')
                && let (Ok(i), Ok(n)) = (i.parse::<usize>(), n.parse::<u64>())
                && i < counts.len()
            {
                counts[i] = n;
            }
        }
        Ok(tables.iter().cloned().zip(counts).collect())
    }

    fn exists(&self, cancel: &Cancel) -> Result<bool> {
        PostgresEngine::exists(self, &self.target.database(), cancel)
    }

    fn health(&self, what: &str, cancel: &Cancel) -> Vec<dbkeep_model::health::Finding> {
        use dbkeep_model::health::{Finding, Level};
        let mut found = Vec::new();
        let url = super::listing::with_connect_timeout(&self.target.url);
        let reach = format!("{what}: reachable");
        let facts = self.query(
            &url,
            "SELECT current_setting('server_version_num') || ' ' || current_user",
            cancel,
        );
        let (num, user) = match facts {
            Ok(line) => {
                let (num, user) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                (num.parse::<u32>().unwrap_or(0), user.to_string())
            }
            Err(e) => {
                found.push(super::health::unreachable(reach, &e));
                return found;
            }
        };
        found.push(Finding::ok(reach, format!("{} as {user}", self.target.url)));
        found.push(match super::health::tool_version(&self.pg_dump) {
            Ok(tool) => super::health::pg_dump_fits(what, &tool, num, PG_DUMP_HINT),
            Err(e) => Finding::bad(
                Level::Fail,
                format!("{what}: pg_dump against the server"),
                e,
                PG_DUMP_HINT,
            ),
        });
        let check = format!("{what}: privileges");
        let unreadable = self.query(
            &url,
            // What pg_dump reads: each table's and sequence's rows, through its schema, past
            // row-level security (a materialized view's rows are not dumped).
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) || CASE \
               WHEN NOT has_schema_privilege(n.oid, 'USAGE') THEN ' (no USAGE on its schema)' \
               WHEN NOT has_table_privilege(c.oid, 'SELECT') THEN '' \
               ELSE ' (row-level security)' END \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'S') \
             AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' \
             AND (NOT has_schema_privilege(n.oid, 'USAGE') OR NOT has_table_privilege(c.oid, 'SELECT') \
               OR (c.relrowsecurity AND NOT pg_has_role(c.relowner, 'USAGE') \
                   AND NOT (SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = current_user))) \
             ORDER BY 1",
            cancel,
        );
        found.push(match unreadable {
            Ok(list) if list.is_empty() => {
                Finding::ok(check, format!("{user} may read every table and sequence"))
            }
            Ok(list) => {
                let names: Vec<&str> = list.lines().collect();
                let shown: Vec<&str> = names.iter().take(3).copied().collect();
                Finding::bad(
                    Level::Fail,
                    check,
                    format!(
                        "{user} may not read {} table(s) or sequence(s) ({}{}): pg_dump stops at the first",
                        names.len(),
                        shown.join(", "),
                        if names.len() > 3 { ", …" } else { "" }
                    ),
                    format!("GRANT pg_read_all_data TO {user} (PostgreSQL 14 and later), or GRANT SELECT on them and USAGE on their schemas; a table with row-level security needs its owner's role or ALTER ROLE {user} BYPASSRLS"),
                )
            }
            Err(e) => Finding::bad(Level::Warn, check, e.to_string(), "check the user's privileges by hand"),
        });
        found
    }

    fn table_count(&self, cancel: &Cancel) -> Result<u64> {
        let out = self.query(
            &self.target.url,
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' \
             AND n.nspname NOT LIKE 'pg\\_%'",
            cancel,
        )?;
        out.parse()
            .map_err(|_| Error::Engine(format!("cannot count the tables: psql said `{out}`")))
    }

    fn dump_globals(&self, out: &mut dyn Write, cancel: &Cancel, log: &RunLog) -> Result<()> {
        let password = self.target.resolve_password().map_err(Error::Engine)?;
        let args = [
            "--globals-only".to_string(),
            "--no-role-passwords".to_string(),
            "--no-password".to_string(),
            format!("--dbname={}", self.target.url),
        ];
        let tool = Tool::spawn(
            &self.sibling("pg_dumpall"),
            Family::Postgres,
            &args,
            password,
            false,
            cancel,
            "install the PostgreSQL client tools (pg_dumpall), or set globals = false",
        )?;
        let bytes = tool.stream_out(out, "pg_dumpall", cancel, log)?;
        log.step(format_args!("stored the server's roles ({bytes} bytes)"));
        Ok(())
    }

    fn discard(&self, cancel: &Cancel) -> Result<()> {
        let admin = self.admin();
        let name = ident(&self.target.database());
        // WITH (FORCE) (PostgreSQL 13 and later) ends stray sessions; older servers drop without.
        self.query(
            &admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            cancel,
        )
        .or_else(|_| self.query(&admin, &format!("DROP DATABASE IF EXISTS {name}"), cancel))
        .map(drop)
    }

    fn restore(
        &self,
        source: &mut dyn std::io::Read,
        reopen: Option<super::Reopen<'_>>,
        opts: &super::RestoreOptions,
        cancel: &Cancel,
        log: &RunLog,
    ) -> Result<usize> {
        load::can_restrict(&self.psql(), cancel)?;
        let name = self.target.database();
        if opts.create && !self.exists(&name, cancel)? {
            return self.restore_new(source, reopen, opts, &name, cancel, log);
        }
        self.load_over(source, opts, &name, cancel, log)
    }
}

impl PostgresEngine {
    /// The server's maintenance database, for what is done from outside a database.
    fn admin(&self) -> url::Url {
        let mut admin = self.target.url.clone();
        admin.set_path("/postgres");
        admin
    }

    fn exists(&self, name: &str, cancel: &Cancel) -> Result<bool> {
        let found = self.query(
            &self.admin(),
            &format!(
                "SELECT 1 FROM pg_database WHERE datname = {}",
                literal(name)
            ),
            cancel,
        )?;
        Ok(found == "1")
    }

    /// Loads `source` into database `name`, which exists: refused when it has content and
    /// `opts.force` is not set; else in one transaction that also removes what it held.
    fn load_over(
        &self,
        source: &mut dyn std::io::Read,
        opts: &super::RestoreOptions,
        name: &str,
        cancel: &Cancel,
        log: &RunLog,
    ) -> Result<usize> {
        let objects: u64 = self
            .query(
                &self.target.url,
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') \
                 AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
                cancel,
            )?
            .parse()
            .unwrap_or(0);
        if objects > 0 && !opts.force {
            return Err(Error::Refused(format!(
                "database {name} has {objects} table(s), view(s) or sequence(s); pass --force to replace its contents (in the same transaction as the load), or restore into a new database with --create"
            )));
        }
        let replace = if objects > 0 { REPLACE_CONTENTS } else { "" };
        let bytes = self.load_in_one(source, opts, replace, cancel, log)?;
        log.step(format_args!(
            "loaded {} into {name} in one transaction",
            indicatif::HumanBytes(bytes)
        ));
        Ok(1)
    }

    /// Loads `source` into a new database `name`: into a database of its own under a
    /// temporary name first (over several connections when `opts.jobs` asks and the stream
    /// can be read again), renamed to `name` only once every part has committed and the file
    /// matched its checksum. A failed or killed load leaves nothing under `name`; what a
    /// killed one left under its temporary name is dropped by the next.
    fn restore_new(
        &self,
        source: &mut dyn std::io::Read,
        reopen: Option<super::Reopen<'_>>,
        opts: &super::RestoreOptions,
        name: &str,
        cancel: &Cancel,
        log: &RunLog,
    ) -> Result<usize> {
        self.drop_leftovers(log);
        let staging_name = crate::throwaway::name("dbkeep_restore")?;
        self.query(
            &self.admin(),
            &format!("CREATE DATABASE {}", ident(&staging_name)),
            cancel,
        )?;
        log.step(format_args!(
            "created database {staging_name} to load into; it becomes {name} once loaded"
        ));
        let staging = PostgresEngine::new(
            crate::throwaway::on_server(&self.target, &staging_name),
            self.pg_dump.clone(),
        );
        let loaded = match (reopen, opts.jobs) {
            (Some(reopen), 2..) => staging.load_parallel(source, reopen, opts, cancel, log),
            _ => staging
                .load_in_one(source, opts, "", cancel, log)
                .map(|bytes| {
                    log.step(format_args!(
                        "loaded {} in one transaction",
                        indicatif::HumanBytes(bytes)
                    ));
                    1
                }),
        }
        .and_then(|connections| {
            load::rename(self, &staging_name, name, cancel)?;
            log.step(format_args!("renamed {staging_name} to {name}"));
            Ok(connections)
        });
        if loaded.is_err() {
            // A fresh flag: a cancelled restore must still clean up.
            let _ = staging.discard(&Cancel::new());
            log.step(format_args!(
                "dropped database {staging_name} after the failed load; nothing was made under {name}"
            ));
        }
        loaded
    }

    /// Drops the temporary databases of restores on this server that were killed: a failure
    /// to do so is logged, and the restore goes on.
    fn drop_leftovers(&self, log: &RunLog) {
        match self.drop_orphans("dbkeep_restore") {
            Ok(dropped) => {
                for name in dropped {
                    tracing::info!(database = %name, "dropped the temporary database a killed restore left");
                    log.step(format_args!("dropped {name}, which a killed restore left"));
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not drop what killed restores left"),
        }
    }

    /// Loads `source` over one connection in one transaction, `replace` (SQL) first, which
    /// commits only once the whole stream was read (and so matched its checksum).
    fn load_in_one(
        &self,
        source: &mut dyn std::io::Read,
        opts: &super::RestoreOptions,
        replace: &str,
        cancel: &Cancel,
        log: &RunLog,
    ) -> Result<u64> {
        let session = load::Restricted::new()?;
        // All in the load's transaction: a refused or failed load creates no role.
        let roles = roles::missing_of(opts);
        let prologue = format!(
            "{}{}{roles}{replace}",
            session.open(),
            load::TRANSACTION_OPEN
        );
        let epilogue = format!("{}{}", load::TRANSACTION_CLOSE, session.close());
        let tool = self.loader(cancel)?;
        tool.stream_in(
            &Feed {
                prologue: prologue.as_bytes(),
                epilogue: epilogue.as_bytes(),
                confirm: session.marker(),
                stopped: "psql was stopped and nothing was committed",
                unconfirmed: load::UNCONFIRMED,
            },
            source,
            cancel,
            log,
        )
        .map_err(|e| explained(e, opts))
    }

    /// Loads `source` over `opts.jobs` connections into this database, which the restore made.
    fn load_parallel(
        &self,
        source: &mut dyn std::io::Read,
        reopen: super::Reopen<'_>,
        opts: &super::RestoreOptions,
        cancel: &Cancel,
        log: &RunLog,
    ) -> Result<usize> {
        let session = load::Restricted::new()?;
        let roles = roles::missing_of(opts);
        let connect = |stop: &Cancel| self.loader(stop);
        parallel::load(
            source,
            reopen,
            opts.jobs,
            roles.as_bytes(),
            &parallel::Connection {
                connect: &connect,
                session: &session,
            },
            cancel,
            log,
        )
        .map_err(|e| explained(e, opts))?;
        log.step(format_args!("loaded over {} connections", opts.jobs));
        Ok(opts.jobs)
    }
}

/// A failed load's error, with what to do about it.
fn explained(error: Error, opts: &super::RestoreOptions) -> Error {
    match error {
        Error::Engine(m) => Error::Engine(load::explain(roles::hint(m, opts))),
        e => e,
    }
}

/// `name` as an SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
