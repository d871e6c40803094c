//! Discovered databases and server checks in the SQLite catalog.

use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::sqlite::SqliteCatalog;
use dbkeep_model::clock::format_time;
use dbkeep_model::discovery::{DiscoveredDatabase, Discoveries, DiscoveryState, ServerCheck};
use dbkeep_model::error::{Error, Result};

/// A `discovered` row as stored: name, server, database, state, found_at, changed_at, detail.
type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
);

impl SqliteCatalog {
    /// A stored time, or an error naming what holds it.
    fn stored_time(&self, text: &str, what: &str) -> Result<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                self.unreadable(format!(
                    "{what} has the time `{text}`, which is not RFC 3339"
                ))
            })
    }

    fn unreadable(&self, message: String) -> Error {
        Error::Catalog {
            path: self.path.clone(),
            message,
        }
    }
}

impl Discoveries for SqliteCatalog {
    fn discovered(&self) -> Result<Vec<DiscoveredDatabase>> {
        let rows: Vec<Row> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare(
                    "SELECT name, server, database, state, found_at, changed_at, detail \
                     FROM discovered ORDER BY server, name",
                )
                .map_err(|e| self.err(e))?;
            stmt.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))?
        };
        rows.into_iter()
            .map(|(name, server, database, state, found, changed, detail)| {
                let what = format!("discovered database `{name}`");
                Ok(DiscoveredDatabase {
                    state: DiscoveryState::from_word(&state).ok_or_else(|| {
                        self.unreadable(format!(
                            "{what} has the state `{state}`, which this dbkeep does not know"
                        ))
                    })?,
                    found_at: self.stored_time(&found, &what)?,
                    changed_at: self.stored_time(&changed, &what)?,
                    name,
                    server,
                    database,
                    detail,
                })
            })
            .collect()
    }

    fn set_discovered(&self, d: &DiscoveredDatabase) -> Result<bool> {
        // One statement: of two writers racing, the second finds the state already set.
        let changed = self
            .conn()
            .execute(
                "INSERT INTO discovered (name, server, database, state, found_at, changed_at, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (name) DO UPDATE SET server = excluded.server, \
                   database = excluded.database, state = excluded.state, \
                   changed_at = excluded.changed_at, detail = excluded.detail \
                 WHERE discovered.state <> excluded.state",
                params![
                    d.name,
                    d.server,
                    d.database,
                    d.state.as_str(),
                    format_time(&d.found_at),
                    format_time(&d.changed_at),
                    d.detail
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(changed > 0)
    }

    fn record_server_check(
        &self,
        server: &str,
        at: DateTime<Utc>,
        error: Option<&str>,
    ) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO server_checks (server, checked_at, error) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (server) DO UPDATE SET checked_at = excluded.checked_at, error = excluded.error",
                params![server, format_time(&at), error],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn server_checks(&self) -> Result<Vec<ServerCheck>> {
        let rows: Vec<(String, String, Option<String>)> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare("SELECT server, checked_at, error FROM server_checks ORDER BY server")
                .map_err(|e| self.err(e))?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(|e| self.err(e))?
                .collect::<rusqlite::Result<_>>()
                .map_err(|e| self.err(e))?
        };
        rows.into_iter()
            .map(|(server, at, error)| {
                Ok(ServerCheck {
                    checked_at: self
                        .stored_time(&at, &format!("the check of server `{server}`"))?,
                    server,
                    error,
                })
            })
            .collect()
    }
}
