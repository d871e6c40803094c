//! A parallel load of a plain-SQL dump into a database the restore itself created: the schema
//! first on one connection, then the tables' `COPY` blocks over several connections at once,
//! then indexes, constraints and the rest on one, as `pg_restore -j` does for its own format.
//!
//! A plain dump has no index of where each table's data starts, so every connection reads the
//! whole stream from its start (decompressing is cheap beside loading) and loads the units it
//! claims first: each block is cut, at line ends, into units of about [`UNIT`] bytes, each
//! loaded as a `COPY` of its own, and units are claimed in dump order, so the connections share
//! even a single large table. (A table's rows may then lie in another physical order than in
//! the source, as any load is free to store them; the rows themselves are the same.)
//!
//! Only blocks that `pg_dump` announced as table data (its `-- Data for Name: …; Type: TABLE
//! DATA` comment) in one run are shared out; anything else loads on the first connection in
//! dump order, after every shared unit has been committed.
//! Lines are handled in bounded pieces: a huge value is never held whole.

use std::io::{self, BufRead, BufWriter, Read, Write};
use std::process::ChildStdin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::super::child::{Tool, watch_for};
use super::load::{Restricted, UNCONFIRMED};
use crate::engine::Reopen;
use dbkeep_model::cancel::Cancel;
use dbkeep_model::error::{Error, Result};
use dbkeep_model::runlog::RunLog;
use dbkeep_model::stream::CHUNK;

/// The most of a line handled at once; a longer line passes in pieces of this size.
const PIECE: usize = 256 * 1024;
/// The size of the units a shared block is split into: each is loaded by one connection as a
/// `COPY` of its own, so that several connections share even one large table.
const UNIT: usize = 8 * 1024 * 1024;
/// The most of the dump's opening `SET` lines kept to start each connection with.
const PREAMBLE_LIMIT: usize = 1024 * 1024;

/// How each connection is made: `connect` starts one `psql` session (autocommit, stopping at
/// the first error), which opens and closes as `session` says (see [`super::load`]).
pub(super) struct Connection<'a> {
    pub connect: &'a (dyn Fn(&Cancel) -> Result<Tool> + Sync),
    pub session: &'a Restricted,
}

/// What a line is, judged by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    Blank,
    Comment,
    /// `-- Name: …` or `-- Data for Name: …`: an entry of the dump's table of contents starts.
    Entry,
    /// `-- Data for Name: …; Type: TABLE DATA; …`: a table's `COPY` block follows.
    TableData,
    /// `COPY … FROM stdin;`
    CopyHeader,
    Statement,
}

fn classify(head: &[u8]) -> Line {
    let line = head.strip_suffix(b"\n").unwrap_or(head);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        Line::Blank
    } else if line.starts_with(b"-- Data for Name: ") && contains(line, b"; Type: TABLE DATA;") {
        Line::TableData
    } else if line.starts_with(b"-- Name: ") || line.starts_with(b"-- Data for Name: ") {
        Line::Entry
    } else if line.starts_with(b"--") {
        Line::Comment
    } else if line.starts_with(b"COPY ") && line.ends_with(b" FROM stdin;") {
        Line::CopyHeader
    } else {
        Line::Statement
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

fn is_end_of_copy(head: &[u8]) -> bool {
    let line = head.strip_suffix(b"\n").unwrap_or(head);
    line.strip_suffix(b"\r").unwrap_or(line) == b"\\."
}

/// Reads the next piece of a line into `out` (at most [`PIECE`] bytes); true when it ends the
/// line. An empty piece that ends the line is the end of the stream.
fn read_piece(reader: &mut impl BufRead, out: &mut Vec<u8>) -> io::Result<bool> {
    out.clear();
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(true);
        }
        let take = buf.len().min(PIECE - out.len());
        if let Some(at) = memchr::memchr(b'\n', &buf[..take]) {
            out.extend_from_slice(&buf[..=at]);
            reader.consume(at + 1);
            return Ok(true);
        }
        out.extend_from_slice(&buf[..take]);
        reader.consume(take);
        if out.len() == PIECE {
            return Ok(false);
        }
    }
}

/// What the next piece of the stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The stream has ended.
    End,
    /// More of a long line: it goes where its start went.
    More,
    /// A line of a `COPY` block's data, or its closing `\.`.
    Data,
    /// A line outside `COPY` data.
    Line(Line),
    /// The header of a shared table-data block, which starts unit `n` of the shared data
    /// (counted from 0 in dump order).
    Shared(usize),
    /// A line of a shared block's data that starts unit `n`: the unit before it has ended.
    Split(usize),
}

/// Reads a dump in pieces and says what each is; every connection reads it the same way, so
/// all number the shared blocks alike.
struct Scanner<R> {
    reader: io::BufReader<R>,
    piece: Vec<u8>,
    line_start: bool,
    copying: bool,
    table_data: bool,
    /// Units of shared data numbered so far.
    units: usize,
    /// The header of the shared block being read, to start each of its units with; empty when
    /// the block is not shared or its header is too long to keep (it is then not split).
    header: Vec<u8>,
    /// Bytes of the current unit so far.
    unit_bytes: usize,
    /// Where a shared block is split.
    unit_limit: usize,
}

impl<R: Read> Scanner<R> {
    fn new(source: R) -> Self {
        Scanner {
            reader: io::BufReader::with_capacity(CHUNK, source),
            piece: Vec::with_capacity(PIECE),
            line_start: true,
            copying: false,
            table_data: false,
            units: 0,
            header: Vec::new(),
            unit_bytes: 0,
            unit_limit: UNIT,
        }
    }

    fn unit(&mut self) -> usize {
        self.units += 1;
        self.units - 1
    }

    fn next(&mut self) -> Result<Step> {
        let ends = read_piece(&mut self.reader, &mut self.piece).map_err(|e| {
            Error::Engine(format!(
                "reading the backup failed: {e}; the load was stopped"
            ))
        })?;
        if self.piece.is_empty() && ends {
            return Ok(Step::End);
        }
        let starts = std::mem::replace(&mut self.line_start, ends);
        if !starts {
            self.unit_bytes += self.piece.len();
            return Ok(Step::More);
        }
        if self.copying {
            if is_end_of_copy(&self.piece) {
                self.copying = false;
                self.header.clear();
            } else if !self.header.is_empty() && self.unit_bytes >= self.unit_limit {
                self.unit_bytes = self.piece.len();
                return Ok(Step::Split(self.unit()));
            }
            self.unit_bytes += self.piece.len();
            return Ok(Step::Data);
        }
        let kind = classify(&self.piece);
        match kind {
            Line::TableData => self.table_data = true,
            Line::Statement => self.table_data = false,
            Line::CopyHeader => {
                self.copying = true;
                if std::mem::take(&mut self.table_data) {
                    if ends {
                        self.header.clone_from(&self.piece);
                    }
                    self.unit_bytes = 0;
                    return Ok(Step::Shared(self.unit()));
                }
            }
            Line::Blank | Line::Comment | Line::Entry => {}
        }
        Ok(Step::Line(kind))
    }
}

/// One `psql` session fed through a buffer.
struct Session {
    tool: Tool,
    stdin: BufWriter<ChildStdin>,
    /// Reads psql's output (the results of the dump's few SELECTs), so it never blocks, and
    /// tells whether it confirmed the end of the session.
    watch: Option<std::thread::JoinHandle<bool>>,
    /// psql stopped reading: its own message says why.
    broken: bool,
}

impl Session {
    fn start(shared: &Shared<'_>, first: &[u8]) -> Result<Session> {
        let tool = (shared.connection.connect)(&shared.stop)?;
        let stdin = tool
            .stdin()
            .ok_or_else(|| Error::Engine("psql has no input".into()))?;
        let watch = tool
            .stdout()
            .map(|stdout| watch_for(stdout, shared.connection.session.marker()));
        let mut session = Session {
            tool,
            stdin: BufWriter::with_capacity(CHUNK, stdin),
            watch,
            broken: false,
        };
        session.write(shared.connection.session.open().as_bytes())?;
        session.write(first)?;
        Ok(session)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.stdin.write_all(bytes).map_err(|e| {
            self.broken = true;
            Error::Engine(format!("psql stopped reading: {e}"))
        })
    }

    /// Ends the session and waits: everything sent has then been run and committed, which
    /// psql confirms.
    fn finish(mut self, shared: &Shared<'_>) -> Result<()> {
        let closed = self.write(shared.connection.session.close().as_bytes());
        self.end(shared, closed)
    }

    /// Ends the input (after `sent`, what became of the last write) and waits.
    fn end(self, shared: &Shared<'_>, sent: Result<()>) -> Result<()> {
        let Session {
            tool, stdin, watch, ..
        } = self;
        // A write that fails means psql stopped reading, by itself: its end says why.
        let flushed = sent.and_then(|()| {
            stdin
                .into_inner()
                .map(drop)
                .map_err(|e| Error::Engine(format!("psql stopped reading: {}", e.into_error())))
        });
        let finished = tool.finish(&shared.stop, shared.log);
        let confirmed = watch.is_none_or(|w| w.join().unwrap_or(false));
        finished?;
        flushed?;
        if confirmed {
            Ok(())
        } else {
            Err(Error::Engine(UNCONFIRMED.to_string()))
        }
    }

    /// Ends the session after `error`: with psql's own message when psql stopped first, else
    /// killed before its input closes, so that it commits nothing more.
    fn fail(self, error: Error, shared: &Shared<'_>) -> Error {
        let stopped_itself = self.broken;
        if !stopped_itself {
            self.tool.kill();
        }
        match self.end(shared, Ok(())) {
            Err(own @ Error::Engine(_))
                if stopped_itself && !matches!(error, Error::Cancelled(_)) =>
            {
                own
            }
            _ => error,
        }
    }
}

/// What the connections share: the next unit to claim, the flag that stops them all and the
/// first failure.
struct Shared<'a> {
    next_unit: AtomicUsize,
    stop: Cancel,
    first_error: Mutex<Option<Error>>,
    connection: &'a Connection<'a>,
    log: &'a RunLog,
}

impl Shared<'_> {
    /// Takes unit `index` for the caller, unless another connection has.
    fn claim(&self, index: usize) -> bool {
        self.next_unit
            .compare_exchange(index, index + 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Records `error` (the first one wins) and stops every connection.
    fn fail(&self, error: Error) {
        let message = error.to_string();
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(error);
        }
        drop(first);
        self.stop.cancel(message);
    }

    /// Checks the stop flag every few thousand steps (a flag check takes a lock).
    fn tick(&self, steps: &mut u32) -> Result<()> {
        *steps = steps.wrapping_add(1);
        if steps.is_multiple_of(4096) {
            self.check()
        } else {
            Ok(())
        }
    }

    fn check(&self) -> Result<()> {
        match self.stop.reason() {
            Some(reason) => Err(Error::Cancelled(reason)),
            None => Ok(()),
        }
    }
}

/// Where the first connection is in the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The opening `SET` lines, before the first entry: every connection runs them.
    Preamble,
    /// The schema, before the first shared block.
    Schema,
    /// The run of shared table-data blocks.
    Data,
    /// Everything after it (indexes, constraints, sequences' values, grants).
    After,
}

/// Loads `source` over `jobs` connections (`jobs` ≥ 2), each made as `connection` says;
/// `prefix` (the missing roles) runs first. Every connection reads its stream to the end, so
/// that each stream's checksum is checked.
///
/// # Errors
/// The first connection's failure, with `psql`'s own message; [`Error::Cancelled`] when
/// `cancel` was raised. What was loaded stays: the caller drops the database it created.
pub(super) fn load(
    source: &mut dyn Read,
    reopen: Reopen<'_>,
    jobs: usize,
    prefix: &[u8],
    connection: &Connection<'_>,
    cancel: &Cancel,
    log: &RunLog,
) -> Result<()> {
    let stop = Cancel::new();
    {
        let stop = stop.clone();
        cancel.on_cancel(move || stop.cancel("cancelled"));
    }
    let shared = Shared {
        next_unit: AtomicUsize::new(0),
        stop,
        first_error: Mutex::new(None),
        connection,
        log,
    };
    std::thread::scope(|scope| {
        if let Err(e) = lead(source, reopen, jobs, prefix, &shared, scope) {
            shared.fail(e);
        }
    });
    if let Some(reason) = cancel.reason() {
        return Err(Error::Cancelled(reason));
    }
    let first = shared
        .first_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    first.map_or(Ok(()), Err)
}

type Helper<'scope> = std::thread::ScopedJoinHandle<'scope, Result<()>>;

fn join_all(helpers: &mut Vec<Helper<'_>>) -> Result<()> {
    let mut failed = None;
    for helper in helpers.drain(..) {
        let joined = helper
            .join()
            .unwrap_or_else(|_| Err(Error::Engine("a loading thread panicked".into())));
        if let Err(e) = joined {
            failed.get_or_insert(e);
        }
    }
    failed.map_or(Ok(()), Err)
}

/// The first connection: the schema, its share of the blocks, then everything after them.
fn lead<'scope, 'env>(
    source: &mut dyn Read,
    reopen: Reopen<'env>,
    jobs: usize,
    prefix: &[u8],
    shared: &'scope Shared<'env>,
    scope: &'scope std::thread::Scope<'scope, 'env>,
) -> Result<()> {
    let mut scan = Scanner::new(source);
    let mut session = Session::start(shared, prefix)?;
    let mut helpers: Vec<Helper<'scope>> = Vec::new();
    let mut preamble = Vec::new();
    let mut phase = Phase::Preamble;
    let mut send = true;
    let mut steps = 0u32;
    let outcome = (|| -> Result<()> {
        loop {
            shared.tick(&mut steps)?;
            match scan.next()? {
                Step::End => break,
                Step::More | Step::Data => {}
                Step::Line(kind) => {
                    if phase == Phase::Preamble && matches!(kind, Line::Entry | Line::TableData) {
                        phase = Phase::Schema;
                    }
                    if phase == Phase::Data && matches!(kind, Line::Statement | Line::CopyHeader) {
                        // The shared run is over: what follows may need every table's rows.
                        join_all(&mut helpers)?;
                        phase = Phase::After;
                    }
                    if phase == Phase::Preamble
                        && preamble.len() + scan.piece.len() <= PREAMBLE_LIMIT
                    {
                        preamble.extend_from_slice(&scan.piece);
                    }
                    send = true;
                }
                Step::Shared(_) if phase == Phase::After => send = true,
                // After the shared run, every block loads whole, in order, on this connection.
                Step::Split(_) if phase == Phase::After => {}
                Step::Split(unit) => send = switch(&mut session, &scan, send, shared.claim(unit))?,
                Step::Shared(unit) => {
                    if phase != Phase::Data {
                        // The schema is committed before any other connection loads into it.
                        let next = Session::start(shared, &preamble)?;
                        std::mem::replace(&mut session, next).finish(shared)?;
                        phase = Phase::Data;
                        let preamble: Arc<[u8]> = preamble.as_slice().into();
                        for _ in 1..jobs {
                            let preamble = Arc::clone(&preamble);
                            helpers.push(scope.spawn(move || {
                                let helped = help(reopen, &preamble, shared);
                                if let Err(e) = &helped {
                                    shared.fail(Error::Engine(e.to_string()));
                                }
                                helped
                            }));
                        }
                    }
                    send = shared.claim(unit);
                }
            }
            if send {
                session.write(&scan.piece)?;
            }
        }
        join_all(&mut helpers)?;
        shared.check()
    })();
    match outcome {
        Ok(()) => session.finish(shared),
        Err(e) => Err(session.fail(e, shared)),
    }
}

/// At the start of a unit within a block: ends this connection's `COPY` if it had the unit
/// before, and starts one with the block's header if it `claimed` this one. Returns whether
/// the unit's lines are this connection's to send.
fn switch<R>(
    session: &mut Session,
    scan: &Scanner<R>,
    sending: bool,
    claimed: bool,
) -> Result<bool> {
    if sending {
        session.write(b"\\.\n")?;
    }
    if claimed {
        session.write(&scan.header)?;
    }
    Ok(claimed)
}

/// Another connection: reads the stream from its start and loads the blocks it claims in the
/// shared run, then ends.
fn help(reopen: Reopen<'_>, preamble: &[u8], shared: &Shared<'_>) -> Result<()> {
    let source = reopen().map_err(|e| Error::Engine(format!("cannot read the backup: {e}")))?;
    let mut scan = Scanner::new(source);
    let mut session = Session::start(shared, preamble)?;
    let mut started = false;
    let mut send = false;
    let mut steps = 0u32;
    let outcome = (|| -> Result<()> {
        loop {
            shared.tick(&mut steps)?;
            match scan.next()? {
                Step::End => return Ok(()),
                Step::More | Step::Data => {}
                Step::Line(Line::Statement | Line::CopyHeader) if started => break,
                Step::Line(_) => send = false,
                Step::Shared(unit) => {
                    started = true;
                    send = shared.claim(unit);
                }
                Step::Split(unit) => send = switch(&mut session, &scan, send, shared.claim(unit))?,
            }
            if send {
                session.write(&scan.piece)?;
            }
        }
        Ok(())
    })();
    match outcome {
        Ok(()) => session.finish(shared)?,
        Err(e) => return Err(session.fail(e, shared)),
    }
    // The rest of the stream is read too (its checksum is checked at its end), after this
    // connection's share is committed.
    loop {
        shared.tick(&mut steps)?;
        if scan.next()? == Step::End {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Each step of `dump` with the bytes it carried.
    fn steps(dump: &[u8]) -> Vec<(Step, Vec<u8>)> {
        split_steps(dump, UNIT)
    }

    fn split_steps(dump: &[u8], unit: usize) -> Vec<(Step, Vec<u8>)> {
        let mut scan = Scanner::new(dump);
        scan.unit_limit = unit;
        let mut out = Vec::new();
        loop {
            let step = scan.next().unwrap();
            if step == Step::End {
                return out;
            }
            out.push((step, scan.piece.clone()));
        }
    }

    #[test]
    fn only_announced_table_data_is_shared_and_every_byte_is_seen_once() {
        let dump = b"SET x = 1;\n\
            --\n-- Name: t; Type: TABLE; Schema: public; Owner: o\n--\n\n\
            CREATE TABLE t (x text);\n\
            COPY public.seed (x) FROM stdin;\nnot shared\n\\.\n\
            --\n-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: o\n--\n\n\
            COPY public.t (x) FROM stdin;\n-- Data for Name: u; Type: TABLE DATA;\nCOPY fake FROM stdin;\n\\.\n\
            -- Data for Name: u; Type: TABLE DATA; Schema: public; Owner: o\n\n\
            COPY public.u (x) FROM stdin;\n1\n\\.\n\
            SELECT pg_catalog.setval('s', 1, true);\n\
            -- Data for Name: v; Type: TABLE DATA; Schema: public; Owner: o\n\
            COPY public.v (x) FROM stdin;\n\\.\n";
        let seen = steps(dump);
        assert_eq!(
            seen.iter().flat_map(|(_, b)| b.clone()).collect::<Vec<_>>(),
            dump
        );
        let shared: Vec<_> = seen
            .iter()
            .filter_map(|(step, bytes)| match step {
                Step::Shared(n) => Some((*n, String::from_utf8_lossy(bytes).into_owned())),
                _ => None,
            })
            .collect();
        // The seed's COPY had no announcement, and what looks like one inside a block is data.
        assert_eq!(
            shared,
            vec![
                (0, "COPY public.t (x) FROM stdin;\n".to_string()),
                (1, "COPY public.u (x) FROM stdin;\n".to_string()),
                (2, "COPY public.v (x) FROM stdin;\n".to_string()),
            ]
        );
        let data = seen.iter().filter(|(s, _)| *s == Step::Data).count();
        assert_eq!(data, 8, "{seen:?}");
        assert!(seen.contains(&(
            Step::Line(Line::Statement),
            b"SELECT pg_catalog.setval('s', 1, true);\n".to_vec()
        )));
    }

    #[test]
    fn a_line_longer_than_a_piece_passes_in_pieces() {
        let mut dump = b"-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: o\nCOPY public.t (x) FROM stdin;\n".to_vec();
        dump.extend(std::iter::repeat_n(b'a', PIECE * 2 + 10));
        dump.extend_from_slice(b"\n\\.\nCREATE INDEX i ON t (x);\n");
        let seen = steps(&dump);
        let kinds: Vec<Step> = seen.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            kinds,
            vec![
                Step::Line(Line::TableData),
                Step::Shared(0),
                Step::Data,
                Step::More,
                Step::More,
                Step::Data,
                Step::Line(Line::Statement),
            ]
        );
        assert!(seen.iter().all(|(_, b)| b.len() <= PIECE));
    }

    #[test]
    fn a_large_block_is_cut_into_units_at_line_ends() {
        let dump = b"-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: o\n\
            COPY public.t (x) FROM stdin;\naaaa\nbbbb\ncccc\ndddd\neeee\n\\.\n\
            -- Data for Name: u; Type: TABLE DATA; Schema: public; Owner: o\n\
            COPY public.u (x) FROM stdin;\nffff\n\\.\n";
        let kinds: Vec<Step> = split_steps(dump, 10).iter().map(|(s, _)| *s).collect();
        assert_eq!(
            kinds,
            vec![
                Step::Line(Line::TableData),
                Step::Shared(0),
                Step::Data,
                Step::Data,
                Step::Split(1),
                Step::Data,
                Step::Split(2),
                Step::Data,
                Step::Line(Line::TableData),
                Step::Shared(3),
                Step::Data,
                Step::Data,
            ]
        );
    }
}
