//! The one way a dump's SQL reaches a database client on a restore: read line by line in
//! bounded pieces, a line outside `COPY` data never longer than a limit (a client holds such a
//! line whole), the dump's own `\restrict` lines and large-object transaction lines left out
//! (the load brings its own protection and its own transaction), and, as asked, its owners and
//! privileges left out as `pg_restore --no-owner --no-privileges` does for its own format.
//!
//! Nothing here decides whether a command in the file runs: the client is run so that none
//! can (psql's `\restrict`, MariaDB's `--sandbox`). What this filter guarantees is that the
//! client never sees an unbounded line, and that the file ends where a dump may end.

use std::fmt;
use std::io::{self, BufRead, Read};

use dbkeep_model::stream::Leave;

/// The most of a line's start held back to judge it; longer lines pass straight through.
const HOLD: usize = 64 * 1024;

/// Whose SQL a dump is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `pg_dump`'s plain format, with `COPY … FROM stdin;` blocks of table data.
    Postgres,
    /// `mariadb-dump`/`mysqldump`: statements only.
    Mysql,
}

/// How a dump is read on its way to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter {
    /// The dump's kind.
    pub dialect: Dialect,
    /// Owners and privileges to leave out (PostgreSQL).
    pub leave: Leave,
    /// The longest line allowed outside `COPY` data, in bytes (`restore_line_limit`).
    pub line_limit: u64,
}

/// Why a dump was not passed on to the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A line outside table data longer than the limit.
    LineTooLong {
        /// Its number, from 1.
        line: u64,
        /// The limit it passed.
        limit: u64,
    },
    /// The file ends inside a `COPY` block's data: it is cut short.
    EndsInCopy {
        /// The line of the block's `COPY` header.
        header: u64,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::LineTooLong { line, limit } => write!(
                f,
                "line {line} of the dump is longer than restore_line_limit ({}) outside table data, so it was not passed on; no dump tool writes such a line: raise restore_line_limit only if you trust this file",
                dbkeep_model::text::exact_size(*limit)
            ),
            Refusal::EndsInCopy { header } => write!(
                f,
                "the dump ends inside the table data that starts at line {header}: the file is cut short"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// Reads a dump for a client, as [`Filter`] says: an `io::Error` of kind `InvalidData`
/// wrapping a [`Refusal`] stops it. The stream always ends with a line end, so that what the
/// load sends after it starts a line of its own.
pub struct SqlFilter<R> {
    inner: R,
    filter: Filter,
    /// The start of the current line, while it may still be left out.
    held: Vec<u8>,
    /// What is ready to be read, from `ready_at`.
    ready: Vec<u8>,
    ready_at: usize,
    /// Within a line passing straight through: its bytes so far.
    passing: Option<u64>,
    /// The line of the `COPY` header whose data is being read.
    copy_from: Option<u64>,
    /// Within pg_dump's large-object data, whose `BEGIN;`/`COMMIT;` are left out.
    large_objects: bool,
    /// The current line's number, from 1.
    line: u64,
    /// The last byte passed on was a line end (or nothing was passed on yet).
    at_line_end: bool,
    ended: bool,
}

impl<R: BufRead> SqlFilter<R> {
    /// A filter over `inner`.
    pub fn new(inner: R, filter: Filter) -> Self {
        SqlFilter {
            inner,
            filter,
            held: Vec::new(),
            ready: Vec::new(),
            ready_at: 0,
            passing: None,
            copy_from: None,
            large_objects: false,
            line: 1,
            at_line_end: true,
            ended: false,
        }
    }

    fn refuse(&self, refusal: Refusal) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, refusal)
    }

    /// The end of the input: refused inside table data, else one last line end if needed.
    fn end(&mut self) -> io::Result<()> {
        if let Some(header) = self.copy_from {
            return Err(self.refuse(Refusal::EndsInCopy { header }));
        }
        self.ended = true;
        if !self.at_line_end {
            self.ready = b"\n".to_vec();
            self.ready_at = 0;
            self.at_line_end = true;
        }
        Ok(())
    }

    fn check_length(&self, length: u64) -> io::Result<()> {
        if self.copy_from.is_none() && length > self.filter.line_limit {
            return Err(self.refuse(Refusal::LineTooLong {
                line: self.line,
                limit: self.filter.line_limit,
            }));
        }
        Ok(())
    }

    /// Passes on the rest of a long line (or a data line) straight from the input; 0 at its
    /// end.
    fn pass(&mut self, so_far: u64, buf: &mut [u8]) -> io::Result<usize> {
        let chunk = self.inner.fill_buf()?;
        if chunk.is_empty() {
            self.passing = None;
            self.end()?;
            return Ok(0);
        }
        let window = &chunk[..chunk.len().min(buf.len())];
        let (n, ends) = match memchr::memchr(b'\n', window) {
            Some(at) => (at + 1, true),
            None => (window.len(), false),
        };
        buf[..n].copy_from_slice(&window[..n]);
        self.inner.consume(n);
        let length = so_far + n as u64;
        self.check_length(length)?;
        self.at_line_end = ends;
        self.passing = if ends {
            self.line += 1;
            None
        } else {
            Some(length)
        };
        Ok(n)
    }

    /// Reads the start of a line into `held`: up to its end, the end of the input, or
    /// [`HOLD`] bytes. True when the line is whole.
    fn hold_line(&mut self) -> io::Result<bool> {
        self.held.clear();
        loop {
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                return Ok(true);
            }
            let room = HOLD - self.held.len();
            let window = &chunk[..chunk.len().min(room)];
            if let Some(at) = memchr::memchr(b'\n', window) {
                self.held.extend_from_slice(&window[..=at]);
                self.inner.consume(at + 1);
                self.check_length(self.held.len() as u64)?;
                return Ok(true);
            }
            let n = window.len();
            self.held.extend_from_slice(window);
            self.inner.consume(n);
            self.check_length(self.held.len() as u64)?;
            if self.held.len() == HOLD {
                return Ok(false);
            }
        }
    }

    /// Whether a whole line is passed on, noting where the dump is.
    fn keeps(&mut self, line: &[u8]) -> bool {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if self.copy_from.is_some() {
            if content == b"\\." {
                self.copy_from = None;
            }
            return true;
        }
        if self.filter.dialect != Dialect::Postgres {
            return true;
        }
        let Ok(text) = std::str::from_utf8(content) else {
            return true;
        };
        if text.starts_with("COPY ") && text.ends_with(" FROM stdin;") {
            self.copy_from = Some(self.line);
            return true;
        }
        if text.starts_with("-- ") {
            if text.contains("; Type: BLOBS;") || text.contains("; Type: LARGE OBJECTS;") {
                self.large_objects = true;
            } else if text.starts_with("-- Name: ") || text.starts_with("-- Data for Name: ") {
                self.large_objects = false;
            }
            return true;
        }
        // pg_dump's own protection: the load opens its own, with a key no file can know.
        if text.starts_with("\\restrict ") || text.starts_with("\\unrestrict ") {
            return false;
        }
        // The large objects' own transaction: the load's transaction holds them.
        if self.large_objects && (text == "BEGIN;" || text == "COMMIT;") {
            return false;
        }
        !self.filter.leave.drops(text)
    }
}

impl<R: BufRead> Read for SqlFilter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.ready_at < self.ready.len() {
                let n = buf.len().min(self.ready.len() - self.ready_at);
                buf[..n].copy_from_slice(&self.ready[self.ready_at..self.ready_at + n]);
                self.ready_at += n;
                return Ok(n);
            }
            if self.ended {
                return Ok(0);
            }
            if let Some(so_far) = self.passing {
                // Nothing passed only at the input's end, which `pass` handled.
                match self.pass(so_far, buf)? {
                    0 => continue,
                    n => return Ok(n),
                }
            }
            // A data line passes straight through unless it may be the block's end (`\.`).
            if self.copy_from.is_some() {
                let chunk = self.inner.fill_buf()?;
                if chunk.first().is_some_and(|b| *b != b'\\') {
                    self.passing = Some(0);
                    continue;
                }
            }
            let whole = self.hold_line()?;
            if self.held.is_empty() {
                self.end()?;
                continue;
            }
            let ends = self.held.ends_with(b"\n");
            let mut line = std::mem::take(&mut self.held);
            if !whole || self.keeps(&line) {
                self.at_line_end = ends;
            } else {
                line.clear();
            }
            // The buffer read out becomes the next line's.
            self.held = std::mem::replace(&mut self.ready, line);
            self.held.clear();
            self.ready_at = 0;
            if !whole {
                self.passing = Some(self.ready.len() as u64);
            } else if ends {
                self.line += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn filter(dialect: Dialect, leave: Leave, line_limit: u64) -> Filter {
        Filter {
            dialect,
            leave,
            line_limit,
        }
    }

    fn read(dump: &[u8], f: Filter) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        // A small buffer, so that lines cross reads and the input's refills.
        let reader = io::BufReader::with_capacity(7, dump);
        let mut filtered = SqlFilter::new(reader, f);
        let mut buf = [0u8; 5];
        loop {
            let n = filtered.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    fn pg(leave: Leave) -> Filter {
        filter(
            Dialect::Postgres,
            leave,
            dbkeep_model::stream::DEFAULT_LINE_LIMIT,
        )
    }

    #[test]
    fn owners_and_grants_go_but_never_a_copy_blocks_rows() {
        let dump = "CREATE TABLE app.t (x text);\n\
            ALTER TABLE app.t OWNER TO someone;\n\
            COPY app.t (x) FROM stdin;\n\
            ALTER TABLE app.t OWNER TO data_not_sql;\n\
            GRANT ALL ON x TO y;\n\
            \\.\n\
            GRANT SELECT ON TABLE app.t TO reader;\n\
            REVOKE ALL ON SCHEMA public FROM PUBLIC;\n\
            ALTER DEFAULT PRIVILEGES FOR ROLE a GRANT SELECT ON TABLES TO b;\n\
            SELECT 'GRANT is fine inside text';\n";
        let text = |leave| String::from_utf8(read(dump.as_bytes(), pg(leave)).unwrap()).unwrap();
        assert_eq!(text(Leave::default()), dump);
        assert_eq!(
            text(Leave {
                owners: true,
                privileges: true,
            }),
            "CREATE TABLE app.t (x text);\n\
             COPY app.t (x) FROM stdin;\n\
             ALTER TABLE app.t OWNER TO data_not_sql;\n\
             GRANT ALL ON x TO y;\n\
             \\.\n\
             SELECT 'GRANT is fine inside text';\n"
        );
        let owners_only = text(Leave {
            owners: true,
            privileges: false,
        });
        assert!(owners_only.contains("GRANT SELECT ON TABLE app.t TO reader;"));
        assert!(!owners_only.contains("OWNER TO someone"));
    }

    #[test]
    fn the_dumps_own_restrict_and_large_object_transaction_lines_go() {
        let dump = "\\restrict abc\nSET x = 1;\n\
            --\n-- Data for Name: BLOBS; Type: BLOBS; Schema: -; Owner: -\n--\n\n\
            BEGIN;\n\nSELECT pg_catalog.lo_open('16388', 131072);\nCOMMIT;\n\n\
            --\n-- Name: p; Type: PROCEDURE; Schema: public; Owner: o\n--\n\n\
            CREATE PROCEDURE p() LANGUAGE plpgsql AS $$\nBEGIN;\nCOMMIT;\nEND $$;\n\
            COPY t (x) FROM stdin;\n\\restrict data\n\\.\n\\unrestrict abc\n";
        let out = String::from_utf8(read(dump.as_bytes(), pg(Leave::default())).unwrap()).unwrap();
        assert_eq!(
            out,
            "SET x = 1;\n\
            --\n-- Data for Name: BLOBS; Type: BLOBS; Schema: -; Owner: -\n--\n\n\
            \nSELECT pg_catalog.lo_open('16388', 131072);\n\n\
            --\n-- Name: p; Type: PROCEDURE; Schema: public; Owner: o\n--\n\n\
            CREATE PROCEDURE p() LANGUAGE plpgsql AS $$\nBEGIN;\nCOMMIT;\nEND $$;\n\
            COPY t (x) FROM stdin;\n\\restrict data\n\\.\n"
        );
        // MySQL dumps pass as they are.
        let my = read(
            dump.as_bytes(),
            filter(Dialect::Mysql, Leave::default(), 1 << 20),
        );
        assert_eq!(my.unwrap(), dump.as_bytes());
    }

    fn refusal(result: io::Result<Vec<u8>>) -> Refusal {
        let error = result.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        error
            .into_inner()
            .unwrap()
            .downcast::<Refusal>()
            .map(|r| *r)
            .unwrap()
    }

    #[test]
    fn a_long_line_outside_table_data_is_refused_inside_it_passes() {
        let long = "x".repeat(HOLD * 3);
        for dialect in [Dialect::Postgres, Dialect::Mysql] {
            let f = filter(dialect, Leave::default(), (HOLD * 2) as u64);
            let dump = format!("SELECT 1;\nSELECT '{long}';\n");
            assert_eq!(
                refusal(read(dump.as_bytes(), f)),
                Refusal::LineTooLong {
                    line: 2,
                    limit: (HOLD * 2) as u64
                }
            );
            // Below the hold-back size too.
            let f = filter(dialect, Leave::default(), 10);
            assert_eq!(
                refusal(read(b"SELECT 1;\nSELECT 12345;\n", f)),
                Refusal::LineTooLong { line: 2, limit: 10 }
            );
        }
        let f = filter(Dialect::Postgres, Leave::default(), 100);
        let dump = format!("COPY t (x) FROM stdin;\n{long}\n\\N{long}\n\\.\nSELECT 2;\n");
        assert_eq!(read(dump.as_bytes(), f).unwrap(), dump.as_bytes());
        assert_eq!(
            Refusal::LineTooLong {
                line: 9,
                limit: 256 << 20
            }
            .to_string()
            .split(" outside")
            .next(),
            Some("line 9 of the dump is longer than restore_line_limit (256 MiB)")
        );
    }

    #[test]
    fn a_dump_cut_short_in_table_data_is_refused_and_every_dump_ends_a_line() {
        let f = pg(Leave::default());
        assert_eq!(
            refusal(read(b"SELECT 1;\nCOPY t (x) FROM stdin;\n1\n2", f)),
            Refusal::EndsInCopy { header: 2 }
        );
        assert_eq!(read(b"SELECT 1;", f).unwrap(), b"SELECT 1;\n");
        assert_eq!(read(b"", f).unwrap(), b"");
        let long = "y".repeat(HOLD + 5);
        let out = read(long.as_bytes(), f).unwrap();
        assert_eq!(out.len(), long.len() + 1);
        assert!(out.starts_with(long.as_bytes()) && out.ends_with(b"y\n"));
        assert_eq!(
            read(b"COPY t (x) FROM stdin;\n1\n\\.", f).unwrap(),
            b"COPY t (x) FROM stdin;\n1\n\\.\n"
        );
    }
}
