//! PostgreSQL: `pg_dump` in plain SQL as a child process, its output streamed to the pipeline.
//!
//! The password reaches `pg_dump` only through `PGPASSWORD` in its environment; the URL on
//! its command line carries none, and `--no-password` stops it from ever waiting on a prompt.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::Engine;
use super::child::Tool;
use crate::cancel::Cancel;
use crate::catalog::Kind;
use crate::config::PgTarget;
use crate::runlog::RunLog;
use crate::{Error, Result};

/// Backs up one PostgreSQL database with `pg_dump`.
pub struct PostgresEngine {
    target: PgTarget,
    pg_dump: PathBuf,
}

impl PostgresEngine {
    /// An engine for `target`, running the `pg_dump` program at `pg_dump` (a path or a name on `PATH`).
    pub fn new(target: PgTarget, pg_dump: PathBuf) -> Self {
        PostgresEngine { target, pg_dump }
    }
}

impl Engine for PostgresEngine {
    fn kind(&self) -> Kind {
        Kind::Postgres
    }

    fn file_name(&self, stamp: &str) -> (String, &'static str) {
        (format!("postgres_backup_{stamp}"), ".sql")
    }

    fn dump(
        &self,
        out: &mut dyn Write,
        _scratch: &Path,
        cancel: &Cancel,
        log: &RunLog,
    ) -> Result<()> {
        let password = self.target.resolve_password().map_err(Error::Engine)?;
        let args = [
            "--no-password".to_string(),
            "--format=plain".to_string(),
            format!("--dbname={}", self.target.url),
        ];
        let tool = Tool::spawn(
            &self.pg_dump,
            &args,
            password.map(|p| ("PGPASSWORD", p)),
            false,
            cancel,
            "install the PostgreSQL client tools and put pg_dump on PATH, or set pg_dump_path",
        )?;
        let copied = match tool.stdout() {
            Some(mut stdout) => crate::pipeline::copy(&mut stdout, out),
            None => Ok(0),
        };
        let copy_failed = copied.err().map(|e| {
            // Our side failed (disk full, say): stop pg_dump rather than let it block.
            tool.kill();
            tool.redact(&format!("writing pg_dump's output failed: {e}"))
        });
        let finished = tool.finish(cancel, log);
        match (copy_failed, finished) {
            (_, Err(e @ Error::Cancelled(_))) => Err(e),
            (Some(message), _) => Err(Error::Engine(message)),
            (None, finished) => finished,
        }
    }
}
