//! Discovered databases and server checks in the PostgreSQL catalog.

use chrono::{DateTime, Utc};

use crate::postgres::PostgresCatalog;
use crate::postgres_rows::ms;
use dbkeep_model::discovery::{DiscoveredDatabase, Discoveries, DiscoveryState, ServerCheck};
use dbkeep_model::error::Result;

/// `s` as PostgreSQL's text holds it: a NUL (a server's words may hold anything) becomes
/// U+FFFD, never an error that loses the whole discovery.
fn text(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

impl Discoveries for PostgresCatalog {
    fn discovered(&self) -> Result<Vec<DiscoveredDatabase>> {
        self.rows(
            "SELECT name, server, database, state, found_at, changed_at, detail \
             FROM discovered ORDER BY server, name",
            &[],
            |r| {
                let name: String = r.try_get(0)?;
                let state: String = r.try_get(3)?;
                Ok(DiscoveredDatabase {
                    state: DiscoveryState::from_word(&state).ok_or_else(|| {
                        format!("discovered database `{name}` has the state `{state}`, which this dbkeep does not know")
                    })?,
                    name,
                    server: r.try_get(1)?,
                    database: r.try_get(2)?,
                    found_at: r.try_get(4)?,
                    changed_at: r.try_get(5)?,
                    detail: r.try_get(6)?,
                })
            },
        )
    }

    fn set_discovered(&self, d: &DiscoveredDatabase) -> Result<bool> {
        // One statement: of two writers racing, the second waits for the first's row and then
        // finds the state already set.
        let changed = self.execute(
            "INSERT INTO discovered (name, server, database, state, found_at, changed_at, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (name) DO UPDATE SET server = excluded.server, \
               database = excluded.database, state = excluded.state, \
               changed_at = excluded.changed_at, detail = excluded.detail \
             WHERE discovered.state <> excluded.state",
            &[
                &d.name,
                &d.server,
                &d.database,
                &d.state.as_str(),
                &ms(d.found_at),
                &ms(d.changed_at),
                &d.detail.as_deref().map(text),
            ],
        )?;
        Ok(changed > 0)
    }

    fn record_server_check(
        &self,
        server: &str,
        at: DateTime<Utc>,
        error: Option<&str>,
    ) -> Result<()> {
        self.execute(
            "INSERT INTO server_checks (server, checked_at, error) VALUES ($1, $2, $3) \
             ON CONFLICT (server) DO UPDATE SET checked_at = excluded.checked_at, error = excluded.error",
            &[&server, &ms(at), &error.map(text)],
        )?;
        Ok(())
    }

    fn server_checks(&self) -> Result<Vec<ServerCheck>> {
        self.rows(
            "SELECT server, checked_at, error FROM server_checks ORDER BY server",
            &[],
            |r| {
                Ok(ServerCheck {
                    server: r.try_get(0)?,
                    checked_at: r.try_get(1)?,
                    error: r.try_get(2)?,
                })
            },
        )
    }
}
