//! Row counts taken while a dump streams by: a tap on the raw stream, before compression, that
//! counts each table's rows with no second pass and no buffering beyond the first bytes of the
//! current line. For PostgreSQL's plain-SQL dumps it counts the lines of each
//! `COPY … FROM stdin;` block (in COPY's text format a row is one line: newlines inside values
//! are escaped).

use std::io::{self, Write};

use crate::engine::TableRows;

/// The most of a line the tap keeps: enough for the `COPY` header of a very wide table.
const HEAD: usize = 128 * 1024;

/// How a dump stream holds its rows, so a tap can count them as they pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// PostgreSQL plain SQL: one line per row inside `COPY … FROM stdin;` … `\.` blocks.
    PgCopy,
}

/// Counts the rows of each table in the bytes shown to it.
pub struct RowTap {
    /// The start of the current line (at most [`HEAD`] bytes).
    line: Vec<u8>,
    /// The table whose `COPY` block is being read, and its rows so far.
    copying: Option<(String, u64)>,
    /// Finished tables, in dump order.
    tables: TableRows,
}

impl RowTap {
    /// A tap for a stream in `format`.
    pub fn new(format: RowFormat) -> Self {
        match format {
            RowFormat::PgCopy => RowTap {
                line: Vec::new(),
                copying: None,
                tables: Vec::new(),
            },
        }
    }

    /// Each table with its row count, in dump order.
    pub fn tables(self) -> TableRows {
        self.tables
    }

    /// Counts what `buf`, the stream's next bytes, holds.
    pub fn observe(&mut self, buf: &[u8]) {
        let mut rest = buf;
        while let Some(at) = rest.iter().position(|b| *b == b'\n') {
            let room = HEAD.saturating_sub(self.line.len());
            self.line.extend_from_slice(&rest[..at.min(room)]);
            self.end_of_line();
            rest = &rest[at + 1..];
        }
        let room = HEAD.saturating_sub(self.line.len());
        self.line.extend_from_slice(&rest[..rest.len().min(room)]);
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

/// A tap is also a sink: writing a whole file through it counts its rows (an import's scan).
impl Write for RowTap {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.observe(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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
            let mut tap = RowTap::new(RowFormat::PgCopy);
            for part in dump.as_bytes().chunks(chunk) {
                tap.observe(part);
            }
            assert_eq!(tap.tables(), want, "chunks of {chunk}");
        }
    }
}
