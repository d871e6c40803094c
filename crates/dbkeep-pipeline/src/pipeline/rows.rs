//! Row counts taken while a dump streams by: a tap on the raw stream, before compression, that
//! counts each table's rows with no second pass and no buffering beyond the first bytes of the
//! current line. Two formats:
//!
//! - [`RowFormat::PgCopy`], PostgreSQL's plain-SQL dumps: the lines of each
//!   `COPY … FROM stdin;` block (in COPY's text format a row is one line: newlines inside values
//!   are escaped).
//! - [`RowFormat::MysqlInsert`], `mariadb-dump`/`mysqldump` SQL: the tuples of each
//!   `INSERT INTO … VALUES (…),(…);` statement that starts a line, scanned byte by byte (quotes and
//!   backslash escapes respected) and never kept, since one statement can be hundreds of MB. A
//!   table whose `CREATE TABLE` line has no INSERT counts 0 rows. Lines inside `DELIMITER ;;`
//!   blocks are trigger, routine and event bodies, not data, and are not read.

use std::io::{self, Write};
use std::mem;

use memchr::{memchr, memchr2};

use dbkeep_model::stream::{RowFormat, TableRows};

/// The most of a line the tap keeps: enough for the `COPY` or `INSERT` header of a very wide table.
const HEAD: usize = 128 * 1024;

/// Counts the rows of each table in the bytes shown to it.
pub struct RowTap {
    /// The start of the current line (at most [`HEAD`] bytes).
    line: Vec<u8>,
    /// Where the stream is, in its format's terms.
    at: At,
    /// Finished tables, in dump order.
    tables: TableRows,
}

/// A tap's position in the stream, by format.
enum At {
    /// `PgCopy`: the table whose `COPY` block is being read, and its rows so far.
    Copy(Option<(String, u64)>),
    /// `MysqlInsert`.
    Insert(Inserts),
}

impl RowTap {
    /// A tap for a stream in `format`.
    pub fn new(format: RowFormat) -> Self {
        let at = match format {
            RowFormat::PgCopy => At::Copy(None),
            RowFormat::MysqlInsert => At::Insert(Inserts {
                mode: Mode::Line { header: true },
                in_block: false,
            }),
        };
        RowTap {
            line: Vec::new(),
            at,
            tables: Vec::new(),
        }
    }

    /// Each table with its row count, in dump order.
    pub fn tables(self) -> TableRows {
        self.tables
    }

    /// Counts what `buf`, the stream's next bytes, holds.
    pub fn observe(&mut self, buf: &[u8]) {
        if let At::Insert(inserts) = &mut self.at {
            inserts.observe(&mut self.line, &mut self.tables, buf);
            return;
        }
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

    /// Reads a whole line of a `PgCopy` stream.
    fn end_of_line(&mut self) {
        let line = mem::take(&mut self.line);
        let At::Copy(copying) = &mut self.at else {
            return;
        };
        match copying {
            Some(_) if line == b"\\." => {
                if let Some((table, rows)) = copying.take() {
                    add(&mut self.tables, table, rows);
                }
            }
            Some((_, rows)) => *rows += 1,
            None => {
                if let Some(table) = copy_header(&line) {
                    *copying = Some((table, 0));
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

/// Adds `rows` to `table`'s count, listing the table if new: a table may come in several blocks
/// or statements (PostgreSQL loads via a partition root; MySQL splits long INSERTs).
fn add(tables: &mut TableRows, table: String, rows: u64) {
    match tables.iter_mut().rev().find(|(t, _)| *t == table) {
        Some((_, total)) => *total += rows,
        None => tables.push((table, rows)),
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

/// A `MysqlInsert` tap's state between chunks.
struct Inserts {
    mode: Mode,
    /// Inside a `DELIMITER ;;` … `DELIMITER ;` block (trigger, routine and event bodies).
    in_block: bool,
}

/// What the bytes being read are.
enum Mode {
    /// A line's head; `header` is false once the line cannot be an INSERT's.
    Line { header: bool },
    /// An INSERT's values: its table, the tuples closed so far, and the scan's state.
    Values {
        table: String,
        rows: u64,
        scan: Scan,
    },
    /// The rest of the line after an INSERT's final `;`.
    Skip,
}

impl Inserts {
    /// Counts what `buf` holds, keeping the current line's head in `line`.
    fn observe(&mut self, line: &mut Vec<u8>, tables: &mut TableRows, buf: &[u8]) {
        let mut rest = buf;
        while !rest.is_empty() {
            match &mut self.mode {
                Mode::Values { table, rows, scan } => {
                    let Some(end) = scan.feed(rest, rows) else {
                        return;
                    };
                    add(tables, mem::take(table), *rows);
                    self.mode = Mode::Skip;
                    rest = &rest[end..];
                }
                Mode::Skip => {
                    let Some(at) = memchr(b'\n', rest) else {
                        return;
                    };
                    self.mode = Mode::Line {
                        header: !self.in_block,
                    };
                    rest = &rest[at + 1..];
                }
                Mode::Line { header } => {
                    let end = memchr(b'\n', rest).unwrap_or(rest.len());
                    let took = end.min(HEAD.saturating_sub(line.len()));
                    line.extend_from_slice(&rest[..took]);
                    if *header {
                        // Read again from the line's start each chunk: a header is short.
                        match insert_header(line) {
                            Ok((table, at)) => {
                                // The values start in the head: scan them, then go on after it.
                                let (mut rows, mut scan) = (0, Scan::default());
                                let done = scan.feed(&line[at..], &mut rows).is_some();
                                line.clear();
                                self.mode = if done {
                                    add(tables, table, rows);
                                    Mode::Skip
                                } else {
                                    Mode::Values { table, rows, scan }
                                };
                                rest = &rest[took..];
                                continue;
                            }
                            Err(Header::More) if took == end => {}
                            // Not an INSERT, or a header too long for the head.
                            Err(_) => *header = false,
                        }
                    }
                    if end == rest.len() {
                        return;
                    }
                    self.end_of_line(line, tables);
                    line.clear();
                    rest = &rest[end + 1..];
                }
            }
        }
    }

    /// Reads a whole line that is not an INSERT: a `DELIMITER` or `CREATE TABLE` line counts.
    fn end_of_line(&mut self, line: &[u8], tables: &mut TableRows) {
        if let Some(delimiter) = line.strip_prefix(b"DELIMITER ") {
            self.in_block = delimiter.trim_ascii() != b";";
        } else if !self.in_block
            && let Some(table) = create_table(line)
        {
            add(tables, table, 0);
        }
        self.mode = Mode::Line {
            header: !self.in_block,
        };
    }
}

/// Why a line's head gives no INSERT header (yet).
enum Header {
    /// It may still be one: more of the line is needed.
    More,
    /// It is none.
    Not,
}

/// The starts of the lines whose statements hold rows.
const INSERTS: [&[u8]; 3] = [b"INSERT INTO ", b"INSERT IGNORE INTO ", b"REPLACE INTO "];

/// Reads `INSERT INTO name [(columns)] VALUES` at the start of `head`: the table, and where its
/// values start.
fn insert_header(head: &[u8]) -> Result<(String, usize), Header> {
    let Some(start) = INSERTS.iter().find(|p| head.starts_with(p)) else {
        let partial = INSERTS.iter().any(|p| p.starts_with(head));
        return Err(if partial { Header::More } else { Header::Not });
    };
    let (table, at) = table_name(head, start.len())?;
    let mut at = skip_spaces(head, at);
    if head.get(at) == Some(&b'(') {
        // A column list (`--complete-insert`), to its `)` outside backticks.
        let mut quoted = false;
        let close = head[at..].iter().position(|b| {
            quoted ^= *b == b'`';
            *b == b')' && !quoted
        });
        at = skip_spaces(head, at + close.ok_or(Header::More)? + 1);
    }
    match &head[at..] {
        rest if rest.starts_with(b"VALUES") => Ok((table, at + b"VALUES".len())),
        rest if b"VALUES".starts_with(rest) => Err(Header::More),
        _ => Err(Header::Not),
    }
}

/// The table of a `CREATE TABLE name (` line (not a view's `/*!50001 CREATE TABLE`).
fn create_table(line: &[u8]) -> Option<String> {
    let rest = line.strip_prefix(b"CREATE TABLE ")?;
    let rest = rest.strip_prefix(b"IF NOT EXISTS ").unwrap_or(rest);
    table_name(rest, 0).ok().map(|(table, _)| table)
}

/// Reads a table name at `head[at..]` and where it ends: backtick-quoted or bare parts, unquoted
/// (a doubled backtick is one) and joined by dots (`` `db`.`t` `` is `db.t`).
fn table_name(head: &[u8], mut at: usize) -> Result<(String, usize), Header> {
    let mut name = Vec::new();
    loop {
        if head.get(at) == Some(&b'`') {
            at += 1;
            loop {
                let close = memchr(b'`', &head[at..]).ok_or(Header::More)?;
                name.extend_from_slice(&head[at..at + close]);
                at += close + 1;
                match head.get(at) {
                    Some(b'`') => name.push(b'`'),
                    Some(_) => break,
                    None => return Err(Header::More),
                }
                at += 1;
            }
        } else {
            let len = head[at..].iter().position(|b| b" \t\r(.;".contains(b));
            let len = len.ok_or(Header::More)?;
            if len == 0 {
                return Err(Header::Not);
            }
            name.extend_from_slice(&head[at..at + len]);
            at += len;
        }
        match head.get(at) {
            Some(b'.') => name.push(b'.'),
            Some(_) => break,
            None => return Err(Header::More),
        }
        at += 1;
    }
    Ok((String::from_utf8(name).map_err(|_| Header::Not)?, at))
}

/// Where the spaces at `head[at..]` end.
fn skip_spaces(head: &[u8], at: usize) -> usize {
    at + head[at..].iter().take_while(|b| **b == b' ').count()
}

/// Where a scan of an INSERT's values is: the tuples are the top-level `(`…`)` outside quotes.
#[derive(Default)]
struct Scan {
    /// Parentheses open outside quotes.
    depth: u32,
    /// The quote (`'`, `"` or a backtick) of the string being read.
    quote: Option<u8>,
    /// The previous byte was a backslash in a `'` or `"` string: this one is literal.
    escaped: bool,
}

impl Scan {
    /// Scans `bytes`, adding each tuple closed to `rows`; returns where the statement's final `;`
    /// ends, if `bytes` holds it.
    fn feed(&mut self, bytes: &[u8], rows: &mut u64) -> Option<usize> {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match self.quote {
                Some(_) if self.escaped => {
                    self.escaped = false;
                    i += 1;
                }
                Some(q) => {
                    // Skip the string's plain bytes at once.
                    let special = match q {
                        b'`' => memchr(q, &bytes[i..]),
                        _ => memchr2(q, b'\\', &bytes[i..]),
                    }?;
                    // A doubled quote (`''`) closes the string and opens it again: the same.
                    if bytes[i + special] == q {
                        self.quote = None;
                    } else {
                        self.escaped = true;
                    }
                    i += special + 1;
                }
                None => {
                    i += 1;
                    match b {
                        b'\'' | b'"' | b'`' => self.quote = Some(b),
                        b'(' => self.depth += 1,
                        b')' => {
                            *rows += u64::from(self.depth == 1);
                            self.depth = self.depth.saturating_sub(1);
                        }
                        b';' if self.depth == 0 => return Some(i),
                        _ => {}
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Counts `dump` fed in chunks of every size the tests use, and checks each split agrees.
    fn count(format: RowFormat, dump: &str) -> TableRows {
        let mut seen = Vec::new();
        for chunk in [1, 2, 3, 7, 64, dump.len()] {
            let mut tap = RowTap::new(format);
            for part in dump.as_bytes().chunks(chunk) {
                tap.observe(part);
            }
            seen.push((chunk, tap.tables()));
        }
        for (chunk, tables) in &seen {
            assert_eq!(*tables, seen[0].1, "chunks of {chunk}");
        }
        seen.remove(0).1
    }

    fn rows(tables: &[(&str, u64)]) -> TableRows {
        tables.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    #[test]
    fn rows_of_each_copy_block_are_counted_across_any_split() {
        let dump = "SET x = 1;\n\
            COPY public.users (id, name) FROM stdin;\n1\tann\n2\tbob\\nline two\n3\t\\N\n\\.\n\
            CREATE INDEX i ON users (name);\n\
            COPY app.\"order items\" (id) FROM stdin;\n\\.\n\
            COPY \"we ird\".t FROM stdin;\n7\n\\.\n\
            COPY public.users (id, name) FROM stdin;\n4\tcy\n\\.\n\
            -- COPY public.fake (x) FROM stdin; in a comment is no COPY\n";
        let want = rows(&[
            ("public.users", 4),
            ("app.\"order items\"", 0),
            ("\"we ird\".t", 1),
        ]);
        assert_eq!(count(RowFormat::PgCopy, dump), want);
    }

    #[test]
    fn tuples_of_each_insert_are_counted_across_any_split() {
        let dump = r#"-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB
/*!40101 SET NAMES utf8mb4 */;
CREATE TABLE `users` (
  `id` int(11) NOT NULL
) ENGINE=InnoDB;
/*!40000 ALTER TABLE `users` DISABLE KEYS */;
INSERT INTO `users` VALUES (1,'ann','it\'s'),(2,'b,o)b',NULL),(3,_binary 'x\0y',0x00FF);
CREATE TABLE `empty` (
  `id` int(11)
);
/*!50001 CREATE TABLE `view stand-in` (
/*!50001 CREATE VIEW `v` AS SELECT 1 AS `a` */;
INSERT INTO `order items` (`id`, `no)te`) VALUES (1,'a\\'),(2,'(');
INSERT INTO `users` VALUES
(4,'),(','a\\'),
(5,'it''s','\\\'',''),
(6,"dq \" ),( ''",'');
-- INSERT INTO `comment` VALUES (1);
 INSERT INTO `indented` VALUES (1);
INSERT IGNORE INTO `we``ird` VALUES (1);
REPLACE INTO `db`.`t` VALUES (1),(2);
DELIMITER ;;
CREATE DEFINER=`root`@`localhost` PROCEDURE `fill`()
BEGIN
INSERT INTO `users` VALUES (99),(100);
CREATE TABLE `in_body` (x int);
END ;;
DELIMITER ;
INSERT INTO users VALUES (7);
INSERT INTO `cut` VALUES (1),(2
"#;
        let want = rows(&[
            ("users", 7),
            ("empty", 0),
            ("order items", 2),
            ("we`ird", 1),
            ("db.t", 2),
        ]);
        assert_eq!(count(RowFormat::MysqlInsert, dump), want);
    }

    /// An excerpt of `mariadb-dump --routines --triggers --events` (MariaDB 10.11) output.
    #[test]
    fn a_real_mariadb_dump_counts_its_tables() {
        let dump = r#"/*M!999999\- enable the sandbox mode */ 
LOCK TABLES `users` WRITE;
/*!40000 ALTER TABLE `users` DISABLE KEYS */;
INSERT INTO `users` VALUES
(1,'ann','it\'s'),
(3,'back\\slash\\','),(x'),
(4,'new\nline\r\n tab	','quote \" dq'),
(5,'emoji 😀🎉','semi;colon'),
(8,'INSERT INTO `users` VALUES (9);','\n-- comment\nDELIMITER ;;\n');
/*!40000 ALTER TABLE `users` ENABLE KEYS */;
UNLOCK TABLES;
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`127.0.0.1`*/ /*!50003 TRIGGER users_ai AFTER INSERT ON users FOR EACH ROW
INSERT INTO log VALUES (CONCAT('new user ', NEW.id)) 
*/;;
DELIMITER ;
/*!50001 CREATE VIEW `v_users` AS SELECT
 NULL AS `id`,
 NULL AS `name` */;
CREATE TABLE `we``ird` (
  `x` int(11) DEFAULT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
LOCK TABLES `we``ird` WRITE;
/*!40000 ALTER TABLE `we``ird` DISABLE KEYS */;
/*!40000 ALTER TABLE `we``ird` ENABLE KEYS */;
UNLOCK TABLES;
"#;
        let mut dump = dump.to_string();
        // A BLOB as mariadb-dump writes it: raw bytes, with only \0 ' " \ and newlines escaped.
        dump.push_str("INSERT INTO `order items` VALUES\n(1,'(','\\0\u{ff}\\'(\\\\','\\0'),\n(2,NULL,'',NULL);\n");
        let want = rows(&[("users", 5), ("we`ird", 0), ("order items", 2)]);
        assert_eq!(count(RowFormat::MysqlInsert, &dump), want);
    }

    #[test]
    fn a_huge_insert_is_counted_without_being_kept() {
        let value = "x''),(\\'".repeat(100_000);
        let dump =
            format!("INSERT INTO `t` VALUES ('{value}'),(1);\nINSERT INTO `t` VALUES (2);\n");
        let mut tap = RowTap::new(RowFormat::MysqlInsert);
        for part in dump.as_bytes().chunks(4096) {
            tap.observe(part);
            assert!(tap.line.len() <= HEAD);
        }
        assert_eq!(tap.tables(), rows(&[("t", 3)]));
    }
}
