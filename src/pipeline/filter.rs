//! Leaving a plain-SQL dump's owners and privileges behind on the way to `psql`, as
//! `pg_restore --no-owner --no-privileges` does for its own format: for restoring onto another
//! server, where the roles the dump names do not exist.

use std::io::{self, BufRead, Read};

/// What [`SqlFilter`] leaves out.
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

    fn drops(self, line: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(line) else {
            return false;
        };
        let statement = text.trim_end();
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

/// Reads a plain-SQL dump line by line, leaving out what [`Leave`] says, never inside a `COPY`
/// block's data (pg_dump writes each of those statements on one line of its own).
pub struct SqlFilter<R> {
    inner: R,
    leave: Leave,
    in_copy: bool,
    line: Vec<u8>,
    at: usize,
}

impl<R: BufRead> SqlFilter<R> {
    /// A filter over `inner`.
    pub fn new(inner: R, leave: Leave) -> Self {
        SqlFilter {
            inner,
            leave,
            in_copy: false,
            line: Vec::new(),
            at: 0,
        }
    }
}

impl<R: BufRead> Read for SqlFilter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.line.len() {
            self.line.clear();
            self.at = 0;
            if self.inner.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(0);
            }
            let content = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
            if self.in_copy {
                self.in_copy = content != b"\\.";
            } else if content.starts_with(b"COPY ") && content.ends_with(b" FROM stdin;") {
                self.in_copy = true;
            } else if self.leave.drops(content) {
                self.line.clear();
            }
        }
        let n = buf.len().min(self.line.len() - self.at);
        buf[..n].copy_from_slice(&self.line[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
        let read = |leave: Leave| {
            let mut out = String::new();
            SqlFilter::new(dump.as_bytes(), leave)
                .read_to_string(&mut out)
                .unwrap();
            out
        };
        assert_eq!(read(Leave::default()), dump);
        let out = read(Leave {
            owners: true,
            privileges: true,
        });
        assert_eq!(
            out,
            "CREATE TABLE app.t (x text);\n\
             COPY app.t (x) FROM stdin;\n\
             ALTER TABLE app.t OWNER TO data_not_sql;\n\
             GRANT ALL ON x TO y;\n\
             \\.\n\
             SELECT 'GRANT is fine inside text';\n"
        );
        let owners_only = read(Leave {
            owners: true,
            privileges: false,
        });
        assert!(owners_only.contains("GRANT SELECT ON TABLE app.t TO reader;"));
        assert!(!owners_only.contains("OWNER TO someone"));
    }
}
