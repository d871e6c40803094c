//! Human-readable output: sizes, durations, times, and one-line results.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use dbkeep::catalog::BackupRecord;
use dbkeep::{BackupOutcome, Pruned};

/// A byte count in binary units (`1.50 MiB`).
pub fn size(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "-".to_string(), |b| indicatif::HumanBytes(b).to_string())
}

/// A duration in milliseconds, as `0.42s` or `3m 07s`.
pub fn duration(ms: Option<u64>) -> String {
    match ms {
        None => "-".to_string(),
        Some(ms) if ms < 60_000 => format!("{:.2}s", ms as f64 / 1000.0),
        Some(ms) => format!("{}m {:02}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// A time in the configured zone, to the second, with the zone (`2026-12-01 00:00:03 UTC`):
/// the one convention for every time a person reads.
pub fn time(t: &DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// `t` as [`time`] shows it, to the millisecond.
pub fn time_ms(t: &DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S%.3f %Z")
        .to_string()
}

/// An error message on one line, its control characters escaped (it may come from a server).
pub fn one_line(text: &str) -> String {
    let joined = text
        .split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    dbkeep::text::escape_controls(&joined, false).into_owned()
}

/// The result line of one backup and the lines of what was pruned after it.
pub fn outcome(o: &BackupOutcome, tz: Tz) -> String {
    let r = &o.record;
    let mut out = match r.status {
        dbkeep::catalog::Status::Success => format!(
            "ok      {}  {}  {}  {}",
            r.database,
            r.file_name.as_deref().unwrap_or("-"),
            size(r.size_bytes),
            duration(r.duration_ms)
        ),
        _ => format!(
            "failed  {}  {}",
            r.database,
            one_line(r.error.as_deref().unwrap_or("unknown error"))
        ),
    };
    for p in o.pruned.iter().filter(|p| p.held.is_none()) {
        out.push('\n');
        out.push_str(&pruned(p, false, tz));
    }
    let mut held: Vec<&str> = o.pruned.iter().filter_map(|p| p.held.as_deref()).collect();
    held.dedup();
    for why in held {
        out.push('\n');
        out.push_str(&one_line(why));
    }
    if let Some(e) = &o.prune_error {
        out.push_str(&format!(
            "\nfailed  {}  could not prune afterwards: {}",
            r.database,
            one_line(e)
        ));
    }
    out
}

/// The line for one pruned (or, on a dry run, prunable) backup copy, with its start time and
/// where it was.
pub fn pruned(p: &Pruned, dry_run: bool, tz: Tz) -> String {
    let r: &BackupRecord = &p.record;
    let name = r.file_name.as_deref().unwrap_or("-");
    let when = time(&r.started_at, tz);
    match (&p.error, dry_run) {
        (Some(e), _) => format!(
            "failed  {}  could not prune {name} at {}: {}",
            r.database,
            p.destination,
            one_line(e)
        ),
        (None, dry) => format!(
            "{}  {}  {name}  {}  from {when}  at {}  ({})",
            if dry { "would prune" } else { "pruned" },
            r.database,
            size(r.size_bytes),
            p.destination,
            p.reason
        ),
    }
}

/// `text` and a newline on standard output.
///
/// # Errors
/// When standard output cannot be written; a reader that stopped reading (`dbkeep list | head`)
/// gives [`std::io::ErrorKind::BrokenPipe`], which `main` takes as the end of the output, not
/// as a failure.
pub fn line(text: impl std::fmt::Display) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{text}")
}

/// `rows` under `header` on standard output, each column as wide as its widest cell.
///
/// # Errors
/// As [`line`].
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let header = header.map(String::from);
    let mut widths = [0usize; N];
    for row in std::iter::once(&header).chain(rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    out.flush()
}
