//! How psql is given a dump: so that nothing in the file runs on this machine, and the load
//! commits all of it or nothing.
//!
//! - **No meta-command from the file runs.** Every session opens with psql's own
//!   `\restrict KEY` (CVE-2025-8714's fix, in psql 13.22, 14.19, 15.14, 16.10, 17.6 and
//!   later), with a random key the file cannot know: from there on psql refuses every
//!   backslash command but `\unrestrict KEY`. A psql without `\restrict` is refused.
//! - **A load commits only at the end.** Its transaction is opened by dbkeep and committed by
//!   dbkeep, after the whole stream was read (the stream ends only once the file matched its
//!   SHA-256). A dbkeep that dies leaves psql an input that ends inside a transaction, which
//!   psql and then the server roll back. A `COMMIT` or `ROLLBACK` of the file's own cannot
//!   commit part of it: the transaction holds a deferred foreign key that fails any commit
//!   but dbkeep's, and the session's later transactions are read-only.
//! - **A load that ends well says so.** psql prints a random marker only after dbkeep's
//!   `COMMIT`; a file whose last statement never ends (an open quote or comment swallowing
//!   the end of the load) leaves psql quiet, and the load failed.

use std::path::Path;

use super::super::child::{Family, Tool};
use super::{PostgresEngine, ident};
use dbkeep_model::cancel::Cancel;
use dbkeep_model::error::{Error, Result};
use dbkeep_model::runlog::RunLog;

/// Opens the load's transaction: later transactions of the session (after a `COMMIT` or
/// `ROLLBACK` of the file's own) are read-only, and this one cannot commit until dbkeep's
/// closing statement inserts the key its deferred foreign key waits for.
pub(super) const TRANSACTION_OPEN: &str = "SET default_transaction_read_only = on;
BEGIN READ WRITE;
CREATE TEMPORARY TABLE dbkeep_commit_key (k int PRIMARY KEY) ON COMMIT DROP;
CREATE TEMPORARY TABLE dbkeep_commit_guard (k int REFERENCES dbkeep_commit_key DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP;
INSERT INTO dbkeep_commit_guard VALUES (1);
";

/// Closes the load's transaction: as the user who opened it, the key inserted, committed.
pub(super) const TRANSACTION_CLOSE: &str = "RESET ROLE;
RESET SESSION AUTHORIZATION;
INSERT INTO pg_temp.dbkeep_commit_key VALUES (1);
COMMIT;
";

/// Said when psql ended well without reaching the end of the load.
pub(super) const UNCONFIRMED: &str = "psql ended without running the end of the load: the dump's last statement never ends (an unterminated string, quoted name or comment took in what followed it), so nothing was committed";

/// A restricted psql session's key and the marker it prints when its load ended well.
pub(crate) struct Restricted {
    key: String,
    marker: String,
}

impl Restricted {
    /// A new key and marker, both random.
    ///
    /// # Errors
    /// When the operating system's random source fails.
    pub(crate) fn new() -> Result<Restricted> {
        Ok(Restricted {
            key: dbkeep_model::token::random_token()?,
            marker: format!("dbkeep-loaded-{}", dbkeep_model::token::random_token()?),
        })
    }

    /// What a session starts with: no meta-command after it runs.
    pub(crate) fn open(&self) -> String {
        format!("\\restrict {}\n", self.key)
    }

    /// What a session ends with, after its last statement: the marker printed.
    pub(crate) fn close(&self) -> String {
        format!("\\unrestrict {}\n\\echo {}\n", self.key, self.marker)
    }

    /// What psql prints once it ran [`Restricted::close`].
    pub(crate) fn marker(&self) -> &[u8] {
        self.marker.as_bytes()
    }
}

/// Checks that `psql` can restrict meta-commands (`\restrict`).
///
/// # Errors
/// [`Error::Refused`] when it cannot, saying which versions can; [`Error::Engine`] when it
/// does not run.
pub(super) fn can_restrict(psql: &Path, cancel: &Cancel) -> Result<()> {
    let tool = Tool::spawn(
        psql,
        Family::Postgres,
        &["--help=commands".to_string()],
        None,
        false,
        cancel,
        super::PSQL_HINT,
    )?;
    let mut help = String::new();
    if let Some(mut stdout) = tool.stdout() {
        let _ = std::io::Read::read_to_string(
            &mut std::io::Read::take(&mut stdout, 1 << 20),
            &mut help,
        );
    }
    tool.finish(cancel, &RunLog::new())?;
    if help.contains("\\restrict") {
        Ok(())
    } else {
        Err(Error::Refused(format!(
            "{} cannot restrict meta-commands (\\restrict, in psql 13.22, 14.19, 15.14, 16.10, 17.6 and later): a dump could run commands on this machine through it, so dbkeep does not load one with it; install a newer PostgreSQL client (or point pg_dump_path at a folder holding one)",
            psql.display()
        )))
    }
}

/// psql's message for a failed load, with what it means when the file tried to end the
/// load's transaction itself.
pub(super) fn explain(message: String) -> String {
    if message.contains("dbkeep_commit_guard") || message.contains("read-only transaction") {
        format!(
            "{message}\nThe dump ends the load's transaction itself (a COMMIT or ROLLBACK of its own); dbkeep commits only once the whole file has arrived and matched its checksum, so nothing of it was committed."
        )
    } else {
        message
    }
}

/// How long a rename waits for the load's sessions to leave the database.
const RENAME_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Renames database `from` to `to` on `server`'s server, waiting for the sessions that just
/// loaded it to be gone.
///
/// # Errors
/// [`Error::Refused`] when `to` exists by now (made by someone else meanwhile); the server's
/// message otherwise.
pub(super) fn rename(server: &PostgresEngine, from: &str, to: &str, cancel: &Cancel) -> Result<()> {
    let started = std::time::Instant::now();
    loop {
        let renamed = server.query(
            &server.admin(),
            &format!("ALTER DATABASE {} RENAME TO {}", ident(from), ident(to)),
            cancel,
        );
        match renamed {
            Ok(_) => return Ok(()),
            Err(Error::Engine(m)) if m.contains("already exists") => {
                return Err(Error::Refused(format!(
                    "database {to} was made by someone else while the restore ran: nothing was replaced, and the restored copy is dropped"
                )));
            }
            Err(Error::Engine(m))
                if m.contains("being accessed by other users")
                    && started.elapsed() < RENAME_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    }
}
