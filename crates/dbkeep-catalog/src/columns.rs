//! What both catalogs share about their rows: the columns of a backup's record, and how a
//! message about a row that does not read quotes a column, and how a listing of several
//! databases at once makes up for the rows it left out.

use dbkeep_model::catalog::{BackupRecord, Catalog, ListFilter, Listed, Status, listed_id};
use dbkeep_model::error::{Error, Result};

/// The columns of a [`dbkeep_model::catalog::BackupRecord`] as both catalogs read them, in order: what a message
/// about an unreadable row names.
pub(crate) const RECORD_COLUMNS: [&str; 23] = [
    "id",
    "database",
    "kind",
    "status",
    "trigger",
    "file_name",
    "path",
    "size_bytes",
    "sha256",
    "compression",
    "started_at",
    "finished_at",
    "duration_ms",
    "error",
    "pruned_at",
    "verified_at",
    "verify_level",
    "verify_status",
    "verify_error",
    "copies",
    "instance",
    "pinned",
    "pin_note",
];

/// Why a backup with `status` (as stored) cannot be pinned.
pub(crate) fn unpinnable(id: dbkeep_model::catalog::BackupId, status: &str) -> Error {
    Error::Refused(format!(
        "backup #{id} is {}: only a successful backup can be pinned",
        dbkeep_model::text::escape_controls(status, false)
    ))
}

/// A column's text as a message about an unreadable row shows it: quoted, its control
/// characters escaped, and cut short when long.
pub(crate) fn quoted(text: &str) -> String {
    const MOST: usize = 64;
    let text = dbkeep_model::text::escape_controls(text, false);
    match text.char_indices().nth(MOST) {
        Some((at, _)) => format!("'{}…'", &text[..at]),
        None => format!("'{text}'"),
    }
}

/// `rows`, the newest `per` of each of `databases` in that order (as a catalog on a server
/// reads them at once), without the rows left out: a database that had some gets as many more
/// from further back, so that each still has its `per` newest readable rows.
pub(crate) fn readable_of_each(
    catalog: &dyn Catalog,
    databases: &[String],
    rows: Vec<Listed>,
    status: Option<Status>,
    per: u32,
) -> Result<Vec<BackupRecord>> {
    let database_of = |row: &Listed| match row {
        Ok(r) => Some(r.database.clone()),
        Err(u) => u.database.clone(),
    };
    let mut rows = rows.into_iter().peekable();
    let mut out = Vec::new();
    for database in databases {
        let (mut seen, mut missing, mut last) = (0u32, 0u32, None);
        while let Some(row) = rows.next_if(|r| database_of(r).as_ref() == Some(database)) {
            seen += 1;
            last = Some(listed_id(&row));
            match row {
                Ok(r) => out.push(r),
                Err(u) => {
                    missing += 1;
                    catalog.left_out().note(u);
                }
            }
        }
        if let Some(last) = last
            && missing > 0
            && seen == per
        {
            out.extend(catalog.list(&ListFilter {
                database: Some(database.clone()),
                status,
                before: Some(last),
                limit: Some(missing),
            })?);
        }
    }
    // Rows of no database asked for (none, from a catalog that answers as asked) are only noted.
    for row in rows {
        if let Err(u) = row {
            catalog.left_out().note(u);
        }
    }
    Ok(out)
}
