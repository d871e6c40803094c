//! The stream contract between engines, the pipeline and the stores: how bytes move, how
//! their progress is told, and what an engine's stream says about its rows.

use std::io::{self, Read, Write};

/// Size of the buffer used to move bytes between stages.
pub const CHUNK: usize = 256 * 1024;

/// Receives the number of uncompressed bytes as they pass, to show progress.
pub trait Progress: Send + Sync {
    /// `bytes` more have been produced by the engine (or, in a later phase, sent).
    fn advance(&self, bytes: u64);

    /// A new phase of the same run begins, `what` it is in words (`copying to off-site
    /// \`s3\``), of `total` bytes when known; [`Progress::advance`] counts it from zero.
    fn phase(&self, what: &str, total: Option<u64>) {
        let _ = (what, total);
    }
}

/// A [`Progress`] that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn advance(&self, _bytes: u64) {}
}

/// Copies `reader` into `writer` in large chunks, returning the byte count.
///
/// # Errors
/// The first read or write error.
pub fn copy(reader: &mut dyn Read, writer: &mut dyn Write) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        writer.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Each table of a backup with its row count, as the backup holds them.
pub type TableRows = Vec<(String, u64)>;

/// How a dump stream holds its rows, so a tap can count them as they pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// PostgreSQL plain SQL: one line per row inside `COPY … FROM stdin;` … `\.` blocks.
    PgCopy,
    /// MySQL/MariaDB SQL (`mariadb-dump`, `mysqldump`): one tuple per row in
    /// `INSERT INTO name [(columns)] VALUES (…),(…);` statements (also `INSERT IGNORE`, `REPLACE`).
    MysqlInsert,
}

/// What a restore leaves out of a dump's SQL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Leave {
    /// `ALTER … OWNER TO …;` statements.
    pub owners: bool,
    /// `GRANT`, `REVOKE` and `ALTER DEFAULT PRIVILEGES` statements.
    pub privileges: bool,
}

impl Leave {
    /// Whether anything is left out at all.
    pub fn any(self) -> bool {
        self.owners || self.privileges
    }

    /// Whether `statement` (one whole statement, ending in `;`) is left out.
    pub fn drops(self, statement: &str) -> bool {
        if !statement.ends_with(';') {
            return false;
        }
        (self.owners && statement.starts_with("ALTER ") && statement.contains(" OWNER TO "))
            || (self.privileges
                && (statement.starts_with("GRANT ")
                    || statement.starts_with("REVOKE ")
                    || statement.starts_with("ALTER DEFAULT PRIVILEGES ")))
    }
}

/// The default of `restore_line_limit`: far above any line `pg_dump` or `mariadb-dump`
/// writes outside table data, far below what would exhaust a machine's memory.
pub const DEFAULT_LINE_LIMIT: u64 = 256 * 1024 * 1024;
