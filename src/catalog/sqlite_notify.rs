//! Failed notifications in the SQLite catalog.

use rusqlite::params;

use super::SqliteCatalog;
use crate::Result;
use crate::catalog::format_time;
use crate::notify::{Deliveries, Delivery};

impl Deliveries for SqliteCatalog {
    fn record_delivery(&self, d: &Delivery) -> Result<()> {
        // Only failures are kept; a delivered notification needs no row.
        let Some(error) = &d.error else {
            return Ok(());
        };
        self.conn()
            .execute(
                "INSERT INTO failed_notifications (at, channel, event, database, backup_id, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    format_time(&d.at),
                    d.channel,
                    d.event.as_str(),
                    d.database,
                    d.backup_id,
                    error
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn failed_deliveries(&self) -> Result<Vec<(String, u64)>> {
        self.counts(
            "SELECT channel, count(*) FROM failed_notifications GROUP BY channel ORDER BY channel",
        )
    }
}
