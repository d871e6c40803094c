//! Row counts taken while a plain-SQL PostgreSQL dump streams by: a tap on the raw stream that
//! counts the lines of each `COPY … FROM stdin;` block (in COPY's text format a row is one line:
//! newlines inside values are escaped), with no second pass and no buffering beyond the first
//! bytes of the current line.

use std::io::{self, Write};

/// The most of a line the tap keeps: enough for the `COPY` header of a very wide table.
const HEAD: usize = 128 * 1024;

/// Passes every byte on to `inner` and counts the rows of each table's `COPY` block.
pub struct CopyRows<W> {
    inner: W,
    /// The start of the current line (at most [`HEAD`] bytes).
    line: Vec<u8>,
    /// The table whose `COPY` block is being read, and its rows so far.
    copying: Option<(String, u64)>,
    /// Finished tables, in dump order.
    tables: Vec<(String, u64)>,
}

impl<W: Write> CopyRows<W> {
    /// A tap in front of `inner`.
    pub fn new(inner: W) -> Self {
        CopyRows {
            inner,
            line: Vec::new(),
            copying: None,
            tables: Vec::new(),
        }
    }

    /// Each table with its row count, in dump order.
    pub fn tables(self) -> Vec<(String, u64)> {
        self.tables
    }

    fn end_of_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        match &mut self.copying {
            Some(_) if line == b"\\." => {
                if let Some((table, rows)) = self.copying.take() {
                    // A table may come in several blocks (data loaded via a partition root).
                    match self.tables.iter_mut().find(|(t, _)| *t == table) {
                        Some((_, total)) => *total += rows,
                        None => self.tables.push((table, rows)),
                    }
                }
            }
            Some((_, rows)) => *rows += 1,
            None => {
                if let Some(table) = copy_header(&line) {
                    self.copying = Some((table, 0));
                }
            }
        }
    }
}

/// The table of a `COPY table (columns) FROM stdin;` line.
fn copy_header(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?;
    let rest = text.strip_prefix("COPY ")?;
    if !rest.ends_with(" FROM stdin;") {
        return None;
    }
    // The name ends where the column list (or FROM) starts, outside double quotes.
    let mut quoted = false;
    for (i, c) in rest.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => return Some(rest[..i].to_string()),
            _ => {}
        }
    }
    None
}

impl<W: Write> Write for CopyRows<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let mut rest = &buf[..n];
        while let Some(at) = rest.iter().position(|b| *b == b'\n') {
            let room = HEAD.saturating_sub(self.line.len());
            self.line.extend_from_slice(&rest[..at.min(room)]);
            self.end_of_line();
            rest = &rest[at + 1..];
        }
        let room = HEAD.saturating_sub(self.line.len());
        self.line.extend_from_slice(&rest[..rest.len().min(room)]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rows_of_each_copy_block_are_counted_across_any_split() {
        let dump = "SET x = 1;\n\
            COPY public.users (id, name) FROM stdin;\n1\tann\n2\tbob\\nline two\n3\t\\N\n\\.\n\
            CREATE INDEX i ON users (name);\n\
            COPY app.\"order items\" (id) FROM stdin;\n\\.\n\
            COPY \"we ird\".t FROM stdin;\n7\n\\.\n\
            COPY public.users (id, name) FROM stdin;\n4\tcy\n\\.\n\
            -- COPY public.fake (x) FROM stdin; in a comment is no COPY\n";
        let want = vec![
            ("public.users".to_string(), 4),
            ("app.\"order items\"".to_string(), 0),
            ("\"we ird\".t".to_string(), 1),
        ];
        for chunk in [1, 2, 3, 7, 64, dump.len()] {
            let mut tap = CopyRows::new(Vec::new());
            for part in dump.as_bytes().chunks(chunk) {
                tap.write_all(part).unwrap();
            }
            assert_eq!(tap.inner, dump.as_bytes());
            assert_eq!(tap.tables(), want, "chunks of {chunk}");
        }
    }
}
