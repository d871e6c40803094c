//! Moving a SQLite catalog into a new, empty PostgreSQL catalog (`dbkeep catalog migrate`):
//! every table of history and accounts, row by row with its ids, each value converted to its
//! PostgreSQL column's type, in one transaction, then the row counts of both sides compared.
//! Leases, instances and failed logins are live state, rebuilt by the instances that run: they
//! are not copied.

use std::error::Error as StdError;
use std::path::Path;
use std::time::Duration;

use bytes::BytesMut;
use chrono::{DateTime, NaiveDateTime, Utc};
use postgres::Transaction;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::postgres::PostgresCatalog;
use crate::postgres_connect::describe;
use crate::sqlite::SqliteCatalog;
use dbkeep_model::error::{Error, Result};

/// The tables copied, parents before the tables that reference them.
const TABLES: &[&str] = &[
    "backups",
    "fires",
    "verifications",
    "backup_tables",
    "copies",
    "offsite_failures",
    "failed_notifications",
    "stale_alerts",
    "retention_marks",
    "discovered",
    "users",
    "sessions",
    "api_tokens",
    "recovery_codes",
    "audit_log",
];

/// The tables left behind: who holds what and who is alive now, recent failed logins, how
/// each server answered its last discovery (asked again within `discover_every`), and logins
/// waiting minutes at most for their second factor or their provider.
const LIVE: &[&str] = &[
    "leases",
    "instances",
    "login_failures",
    "server_checks",
    "pending_logins",
    "oidc_logins",
];

/// How long the copy waits for another session's lock on the target's tables.
const LOCK_TIMEOUT: &str = "30s";

impl PostgresCatalog {
    /// The tables [`PostgresCatalog::copy_from_sqlite`] leaves behind: live state (leases,
    /// instances, failed logins) that the running instances recreate.
    pub const LIVE_TABLES: &'static [&'static str] = LIVE;

    /// Copies the SQLite catalog at `sqlite` (migrated to the latest schema first) into this
    /// catalog, which must hold no rows in any of the tables copied: backups, fires,
    /// verifications, backup tables, copies, off-site failures, failed notifications, stale
    /// alerts, retention marks, users, sessions and API tokens (not
    /// [`PostgresCatalog::LIVE_TABLES`]). Rows keep
    /// their ids, and each identity sequence continues after the highest id either side used.
    ///
    /// It reads one consistent snapshot of the SQLite file and streams each table (nothing is
    /// held in memory but one row), all in one transaction: when anything fails, nothing is
    /// left in this catalog. Returns, for each table copied, its rows in SQLite and in this
    /// catalog once copied (equal, or it fails).
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no file at `sqlite`; [`Error::Catalog`] naming the file
    /// when it cannot be opened, migrated or read; [`Error::Catalog`] naming this catalog's URL
    /// when it is not empty, cannot be reached or written, a value does not fit its column, or
    /// a table's row counts differ.
    pub fn copy_from_sqlite(&self, sqlite: &Path) -> Result<Vec<(String, u64, u64)>> {
        if !sqlite.is_file() {
            return Err(Error::NotFound(format!(
                "there is no SQLite catalog at {}: nothing to migrate",
                sqlite.display()
            )));
        }
        // Brings its schema to the latest version, so that its columns are the ones expected.
        drop(SqliteCatalog::open(sqlite)?);
        let source_err = |message: String| Error::Catalog {
            path: sqlite.to_path_buf(),
            message,
        };
        let source = open_source(sqlite).map_err(source_err)?;
        let sqlite_path = sqlite.to_path_buf();
        let copied = self.transaction(move |tx| {
            // The work runs in a savepoint: whatever fails rolls back to it, and the empty
            // transaction around it is all that commits.
            let mut work = tx.transaction()?;
            match copy_all(&mut work, &source, &sqlite_path) {
                Ok(counts) => {
                    work.commit()?;
                    Ok(Ok(counts))
                }
                Err(failure) => {
                    work.rollback()?;
                    Ok(Err(failure))
                }
            }
        })?;
        copied.map_err(|failure| match failure {
            Failure::Target(message) => self.err(message),
            Failure::Source(message) => source_err(message),
        })
    }
}

/// Opens the SQLite file read-only and begins the read transaction that every table is read
/// in, so that all of them come from one moment.
fn open_source(path: &Path) -> std::result::Result<Connection, String> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| e.to_string())?;
    conn.busy_timeout(Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    conn.execute_batch("BEGIN").map_err(|e| e.to_string())?;
    // A deferred transaction takes its snapshot at its first read: take it now.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Why the copy failed, and on which side.
#[derive(Debug)]
enum Failure {
    /// The PostgreSQL catalog: not empty, unwritable, a value it cannot take, counts differ.
    Target(String),
    /// The SQLite file could not be read.
    Source(String),
}

type Step<T> = std::result::Result<T, Failure>;

/// A PostgreSQL error, with what was being done.
fn target(context: impl std::fmt::Display) -> impl FnOnce(postgres::Error) -> Failure {
    move |e| Failure::Target(format!("{context}: {}", describe(&e)))
}

/// A SQLite error, with what was being done.
fn source(context: impl std::fmt::Display) -> impl FnOnce(rusqlite::Error) -> Failure {
    move |e| Failure::Source(format!("{context}: {e}"))
}

/// Everything [`PostgresCatalog::copy_from_sqlite`] does inside its transaction.
fn copy_all(
    tx: &mut Transaction<'_>,
    sqlite: &Connection,
    sqlite_path: &Path,
) -> Step<Vec<(String, u64, u64)>> {
    let list = TABLES.join(", ");
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = '{LOCK_TIMEOUT}';
         LOCK TABLE {list} IN SHARE ROW EXCLUSIVE MODE"
    ))
    .map_err(target("cannot lock its tables (is a dbkeep using it?)"))?;
    refuse_unless_empty(tx)?;
    let mut copied = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let columns = target_columns(tx, table)?;
        let names = columns_to_copy(sqlite, table, &columns)?;
        let read = copy_table(tx, sqlite, table, &names)?;
        reset_sequences(tx, sqlite, table, &columns)?;
        let in_sqlite = count_sqlite(sqlite, table)?;
        let in_target = count_target(tx, table)?;
        if read != in_sqlite {
            return Err(Failure::Source(format!(
                "{table}: read {read} rows of the {in_sqlite} it holds (was {} written to \
                 meanwhile?)",
                sqlite_path.display()
            )));
        }
        copied.push((table.to_string(), in_sqlite, in_target));
    }
    let differ: Vec<String> = copied
        .iter()
        .filter(|(_, a, b)| a != b)
        .map(|(t, a, b)| format!("{t}: {a} in SQLite, {b} here"))
        .collect();
    if !differ.is_empty() {
        return Err(Failure::Target(format!(
            "the row counts differ after the copy ({}); nothing was kept",
            differ.join("; ")
        )));
    }
    Ok(copied)
}

/// Refuses a catalog that holds rows in any table copied: ids would collide, and two
/// histories would mix.
fn refuse_unless_empty(tx: &mut Transaction<'_>) -> Step<()> {
    let mut held = Vec::new();
    for table in TABLES {
        let any: bool = tx
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), &[])
            .and_then(|r| r.try_get(0))
            .map_err(target(format!("cannot read {table}")))?;
        if any {
            held.push(*table);
        }
    }
    if held.is_empty() {
        return Ok(());
    }
    Err(Failure::Target(format!(
        "it is not empty (it has rows in {}): migrate only into a new, empty catalog \
         database; nothing was copied",
        held.join(", ")
    )))
}

/// A column of a table in the PostgreSQL catalog.
struct Column {
    name: String,
    ty: ColumnType,
    /// Filled from a sequence (an identity or serial column).
    sequence: bool,
}

/// The types of column a SQLite value can be converted to.
#[derive(Debug, Clone, Copy)]
enum ColumnType {
    Int8,
    Int4,
    Int2,
    Text,
    Varchar,
    Timestamptz,
    Bool,
    Float8,
    Float4,
    Bytea,
}

impl ColumnType {
    /// The type `information_schema.columns.data_type` names, when it is one of these.
    fn from_data_type(name: &str) -> Option<ColumnType> {
        Some(match name {
            "bigint" => ColumnType::Int8,
            "integer" => ColumnType::Int4,
            "smallint" => ColumnType::Int2,
            "text" => ColumnType::Text,
            "character varying" => ColumnType::Varchar,
            "timestamp with time zone" => ColumnType::Timestamptz,
            "boolean" => ColumnType::Bool,
            "double precision" => ColumnType::Float8,
            "real" => ColumnType::Float4,
            "bytea" => ColumnType::Bytea,
            _ => return None,
        })
    }

    fn pg(self) -> Type {
        match self {
            ColumnType::Int8 => Type::INT8,
            ColumnType::Int4 => Type::INT4,
            ColumnType::Int2 => Type::INT2,
            ColumnType::Text => Type::TEXT,
            ColumnType::Varchar => Type::VARCHAR,
            ColumnType::Timestamptz => Type::TIMESTAMPTZ,
            ColumnType::Bool => Type::BOOL,
            ColumnType::Float8 => Type::FLOAT8,
            ColumnType::Float4 => Type::FLOAT4,
            ColumnType::Bytea => Type::BYTEA,
        }
    }
}

/// The columns of `table` in the PostgreSQL catalog, in order, with their types.
fn target_columns(tx: &mut Transaction<'_>, table: &str) -> Step<Vec<Column>> {
    let rows = tx
        .query(
            "SELECT column_name::text, data_type::text,
                    is_identity = 'YES' OR coalesce(column_default, '') LIKE 'nextval(%'
             FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1
             ORDER BY ordinal_position",
            &[&table],
        )
        .map_err(target(format!("cannot read the columns of {table}")))?;
    let mut columns = Vec::with_capacity(rows.len());
    for row in rows {
        let read = |row: &postgres::Row| -> std::result::Result<_, postgres::Error> {
            Ok((
                row.try_get::<_, String>(0)?,
                row.try_get::<_, String>(1)?,
                row.try_get::<_, bool>(2)?,
            ))
        };
        let (name, data_type, sequence) =
            read(&row).map_err(target(format!("cannot read the columns of {table}")))?;
        let ty = ColumnType::from_data_type(&data_type).ok_or_else(|| {
            Failure::Target(format!(
                "{table}.{name} is of type {data_type}, which this dbkeep cannot fill"
            ))
        })?;
        columns.push(Column { name, ty, sequence });
    }
    if columns.is_empty() {
        return Err(Failure::Target(format!("it has no table {table}")));
    }
    Ok(columns)
}

/// The columns of `table` to copy: the PostgreSQL catalog's, in its order, that the SQLite
/// file has too. A SQLite column with no counterpart fails the copy (its values would be lost).
fn columns_to_copy<'c>(
    sqlite: &Connection,
    table: &str,
    columns: &'c [Column],
) -> Step<Vec<&'c Column>> {
    let context = format!("cannot read the columns of {table}");
    let mut stmt = sqlite
        .prepare("SELECT name FROM pragma_table_info(?1)")
        .map_err(source(&context))?;
    let names = stmt
        .query_map([table], |r| r.get::<_, String>(0))
        .map_err(source(&context))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(source(&context))?;
    if names.is_empty() {
        return Err(Failure::Source(format!("it has no table {table}")));
    }
    if let Some(lost) = names
        .iter()
        .find(|n| !columns.iter().any(|c| &c.name == *n))
    {
        return Err(Failure::Target(format!(
            "{table}.{lost} of the SQLite catalog has no column to go to here (is this dbkeep \
             older than the one that wrote it?)"
        )));
    }
    Ok(columns.iter().filter(|c| names.contains(&c.name)).collect())
}

/// An identifier, quoted for both SQLite and PostgreSQL.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Streams the rows of `table` from SQLite into PostgreSQL (binary `COPY`, ids kept); returns
/// how many it read.
fn copy_table(
    tx: &mut Transaction<'_>,
    sqlite: &Connection,
    table: &str,
    columns: &[&Column],
) -> Step<u64> {
    let list = columns
        .iter()
        .map(|c| quote(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let types: Vec<Type> = columns.iter().map(|c| c.ty.pg()).collect();
    let reading = format!("cannot read {table}");
    let mut stmt = sqlite
        .prepare(&format!(
            "SELECT {list} FROM {} ORDER BY rowid",
            quote(table)
        ))
        .map_err(source(&reading))?;
    let mut rows = stmt.query([]).map_err(source(&reading))?;
    let sink = tx
        .copy_in(&format!("COPY {table} ({list}) FROM STDIN (FORMAT binary)"))
        .map_err(target(format!("cannot copy into {table}")))?;
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    let mut cells = Vec::with_capacity(columns.len());
    let mut read = 0u64;
    while let Some(row) = rows.next().map_err(source(&reading))? {
        read += 1;
        cells.clear();
        for (i, column) in columns.iter().enumerate() {
            let value = row.get_ref(i).map_err(source(&reading))?;
            let cell = convert(value, column.ty).map_err(|why| {
                Failure::Target(format!(
                    "{table}.{} of row {read} cannot be stored here: {why}",
                    column.name
                ))
            })?;
            cells.push(cell);
        }
        writer
            .write_raw(cells.iter())
            .map_err(target(format!("cannot copy row {read} of {table}")))?;
    }
    writer
        .finish()
        .map_err(target(format!("cannot copy into {table}")))?;
    Ok(read)
}

/// Sets each sequence of `table` past the highest id used: the rows' own, and the highest
/// SQLite ever handed out (AUTOINCREMENT never reuses one, even of a deleted row).
fn reset_sequences(
    tx: &mut Transaction<'_>,
    sqlite: &Connection,
    table: &str,
    columns: &[Column],
) -> Step<()> {
    for column in columns.iter().filter(|c| c.sequence) {
        let name = quote(&column.name);
        let max: Option<i64> = tx
            .query_one(&format!("SELECT max({name})::bigint FROM {table}"), &[])
            .and_then(|r| r.try_get(0))
            .map_err(target(format!("cannot read the ids of {table}")))?;
        let handed_out = sqlite_sequence(sqlite, table)?;
        let last = max.into_iter().chain(handed_out).max().filter(|n| *n > 0);
        // With no id used, the next one is 1.
        let (value, called) = last.map_or((1, false), |n| (n, true));
        tx.execute(
            "SELECT setval(pg_get_serial_sequence($1, $2), $3, $4)",
            &[&table, &column.name, &value, &called],
        )
        .map_err(target(format!("cannot set the sequence of {table}")))?;
    }
    Ok(())
}

/// The highest id SQLite's AUTOINCREMENT has handed out for `table`, if it keeps one.
fn sqlite_sequence(sqlite: &Connection, table: &str) -> Step<Option<i64>> {
    let kept: bool = sqlite
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence')",
            [],
            |r| r.get(0),
        )
        .map_err(source("cannot read sqlite_master"))?;
    if !kept {
        return Ok(None);
    }
    sqlite
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = ?1",
            [table],
            |r| r.get::<_, Option<i64>>(0),
        )
        .optional()
        .map(Option::flatten)
        .map_err(source("cannot read sqlite_sequence"))
}

fn count_sqlite(sqlite: &Connection, table: &str) -> Step<u64> {
    sqlite
        .query_row(&format!("SELECT count(*) FROM {}", quote(table)), [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(source(format!("cannot count the rows of {table}")))
}

fn count_target(tx: &mut Transaction<'_>, table: &str) -> Step<u64> {
    tx.query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .and_then(|r| r.try_get::<_, i64>(0))
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(target(format!("cannot count the rows of {table}")))
}

/// One value converted for its PostgreSQL column.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Int8(i64),
    Int4(i32),
    Int2(i16),
    Text(String),
    Time(DateTime<Utc>),
    Bool(bool),
    Float8(f64),
    Float4(f32),
    Bytes(Vec<u8>),
}

impl ToSql for Cell {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Cell::Null => Ok(IsNull::Yes),
            Cell::Int8(v) => v.to_sql(ty, out),
            Cell::Int4(v) => v.to_sql(ty, out),
            Cell::Int2(v) => v.to_sql(ty, out),
            Cell::Text(v) => v.to_sql(ty, out),
            Cell::Time(v) => v.to_sql(ty, out),
            Cell::Bool(v) => v.to_sql(ty, out),
            Cell::Float8(v) => v.to_sql(ty, out),
            Cell::Float4(v) => v.to_sql(ty, out),
            Cell::Bytes(v) => v.to_sql(ty, out),
        }
    }

    /// Every cell was converted for its column's type already (see [`convert`]).
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A SQLite value as a value of a column of type `ty`: SQLite's times are RFC 3339 text, its
/// booleans integers, and any column may hold any type of value.
fn convert(value: ValueRef<'_>, ty: ColumnType) -> std::result::Result<Cell, String> {
    if let ValueRef::Null = value {
        return Ok(Cell::Null);
    }
    Ok(match ty {
        ColumnType::Int8 => Cell::Int8(integer(value)?),
        ColumnType::Int4 => Cell::Int4(narrow(integer(value)?)?),
        ColumnType::Int2 => Cell::Int2(narrow(integer(value)?)?),
        ColumnType::Text | ColumnType::Varchar => {
            let text = match value {
                ValueRef::Integer(n) => n.to_string(),
                ValueRef::Real(f) => f.to_string(),
                ValueRef::Text(b) | ValueRef::Blob(b) => String::from_utf8(b.to_vec())
                    .map_err(|_| "it is not valid UTF-8 text".to_string())?,
                ValueRef::Null => return Ok(Cell::Null),
            };
            if text.contains('\0') {
                return Err("it holds a NUL character, which PostgreSQL text cannot".into());
            }
            Cell::Text(text)
        }
        ColumnType::Timestamptz => match value {
            ValueRef::Text(b) => Cell::Time(time(&String::from_utf8_lossy(b))?),
            other => return Err(format!("{} is not a time", describe_value(other))),
        },
        ColumnType::Bool => Cell::Bool(match value {
            ValueRef::Integer(n) => n != 0,
            ValueRef::Real(f) => f != 0.0,
            ValueRef::Text(b) => match String::from_utf8_lossy(b).trim().to_ascii_lowercase() {
                t if ["1", "t", "true", "yes", "on"].contains(&t.as_str()) => true,
                t if ["0", "f", "false", "no", "off"].contains(&t.as_str()) => false,
                t => return Err(format!("`{t}` is not a boolean")),
            },
            other => return Err(format!("{} is not a boolean", describe_value(other))),
        }),
        ColumnType::Float8 => Cell::Float8(float(value)?),
        // Narrowing a double to a real loses precision, as PostgreSQL's own cast does.
        ColumnType::Float4 => Cell::Float4(float(value)? as f32),
        ColumnType::Bytea => match value {
            ValueRef::Blob(b) | ValueRef::Text(b) => Cell::Bytes(b.to_vec()),
            other => return Err(format!("{} is not bytes", describe_value(other))),
        },
    })
}

/// A SQLite value, for messages.
fn describe_value(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(n) => format!("the integer {n}"),
        ValueRef::Real(f) => format!("the number {f}"),
        ValueRef::Text(b) => format!("the text `{}`", String::from_utf8_lossy(b)),
        ValueRef::Blob(b) => format!("a blob of {} bytes", b.len()),
    }
}

/// A whole number from an integer, a real without a fraction or a text holding one.
fn integer(value: ValueRef<'_>) -> std::result::Result<i64, String> {
    match value {
        ValueRef::Integer(n) => Ok(n),
        ValueRef::Real(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
        ValueRef::Text(b) => String::from_utf8_lossy(b)
            .trim()
            .parse()
            .map_err(|_| format!("{} is not a whole number", describe_value(value))),
        other => Err(format!("{} is not a whole number", describe_value(other))),
    }
}

fn narrow<T: TryFrom<i64>>(n: i64) -> std::result::Result<T, String> {
    T::try_from(n).map_err(|_| format!("{n} is out of the column's range"))
}

fn float(value: ValueRef<'_>) -> std::result::Result<f64, String> {
    match value {
        ValueRef::Real(f) => Ok(f),
        ValueRef::Integer(n) => Ok(n as f64),
        ValueRef::Text(b) => String::from_utf8_lossy(b)
            .trim()
            .parse()
            .map_err(|_| format!("{} is not a number", describe_value(value))),
        other => Err(format!("{} is not a number", describe_value(other))),
    }
}

/// A time as SQLite keeps it: RFC 3339 (what dbkeep writes), or SQLite's own `YYYY-MM-DD
/// HH:MM:SS[.SSS]` in UTC.
fn time(text: &str) -> std::result::Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc());
        }
    }
    Err(format!("`{text}` is not an RFC 3339 time"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn values_are_converted_to_their_columns_types() {
        let t = convert(
            ValueRef::Text(b"2024-03-01T12:34:56.789Z"),
            ColumnType::Timestamptz,
        )
        .unwrap();
        let want = DateTime::parse_from_rfc3339("2024-03-01T12:34:56.789Z").unwrap();
        assert_eq!(t, Cell::Time(want.with_timezone(&Utc)));
        assert_eq!(
            convert(
                ValueRef::Text(b"2024-03-01 12:34:56"),
                ColumnType::Timestamptz
            )
            .unwrap(),
            Cell::Time(
                DateTime::parse_from_rfc3339("2024-03-01T12:34:56Z")
                    .unwrap()
                    .with_timezone(&Utc)
            )
        );
        assert!(convert(ValueRef::Text(b"yesterday"), ColumnType::Timestamptz).is_err());
        assert!(convert(ValueRef::Integer(5), ColumnType::Timestamptz).is_err());
        assert_eq!(
            convert(ValueRef::Integer(1), ColumnType::Bool).unwrap(),
            Cell::Bool(true)
        );
        assert_eq!(
            convert(ValueRef::Integer(0), ColumnType::Bool).unwrap(),
            Cell::Bool(false)
        );
        assert_eq!(
            convert(ValueRef::Text(b"42"), ColumnType::Int8).unwrap(),
            Cell::Int8(42)
        );
        assert_eq!(
            convert(ValueRef::Real(7.0), ColumnType::Int4).unwrap(),
            Cell::Int4(7)
        );
        assert!(convert(ValueRef::Integer(1 << 40), ColumnType::Int4).is_err());
        assert!(convert(ValueRef::Real(1.5), ColumnType::Int8).is_err());
        assert_eq!(
            convert(ValueRef::Integer(3), ColumnType::Text).unwrap(),
            Cell::Text("3".into())
        );
        assert!(convert(ValueRef::Text(b"a\0b"), ColumnType::Text).is_err());
        assert!(convert(ValueRef::Blob(&[0xff, 0xfe]), ColumnType::Text).is_err());
        assert_eq!(
            convert(ValueRef::Null, ColumnType::Timestamptz).unwrap(),
            Cell::Null
        );
    }

    #[test]
    fn the_tables_copied_come_after_the_tables_they_reference() {
        // Each table's foreign keys, as the PostgreSQL schema declares them.
        let references = [
            ("fires", "backups"),
            ("verifications", "backups"),
            ("backup_tables", "backups"),
            ("copies", "backups"),
            ("sessions", "users"),
        ];
        let at = |t: &str| TABLES.iter().position(|x| *x == t).unwrap();
        for (child, parent) in references {
            assert!(at(parent) < at(child), "{child} before {parent}");
        }
        assert!(LIVE.iter().all(|t| !TABLES.contains(t)));
    }
}
