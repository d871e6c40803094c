//! Failed notifications, stale alerts and disk alerts in the SQLite catalog.

use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::sqlite::SqliteCatalog;
use dbkeep_model::catalog::format_time;
use dbkeep_model::deliveries::{Deliveries, Delivery};
use dbkeep_model::error::Result;

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

    fn stale_announced(&self) -> Result<Vec<(String, Option<DateTime<Utc>>)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT database, last_success FROM stale_alerts ORDER BY database")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (database, last) = row.map_err(|e| self.err(e))?;
            let last = last
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc));
            out.push((database, last));
        }
        Ok(out)
    }

    fn set_stale_announced(
        &self,
        database: &str,
        announced: Option<(Option<DateTime<Utc>>, DateTime<Utc>)>,
    ) -> Result<()> {
        let conn = self.conn();
        match announced {
            Some((last, at)) => conn.execute(
                "INSERT INTO stale_alerts (database, last_success, announced_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (database) DO UPDATE SET last_success = ?2, announced_at = ?3",
                params![database, last.as_ref().map(format_time), format_time(&at)],
            ),
            None => conn.execute("DELETE FROM stale_alerts WHERE database = ?1", [database]),
        }
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn claim_disk_alert(&self, disk: &str, at: DateTime<Utc>) -> Result<bool> {
        let inserted = self
            .conn()
            .execute(
                "INSERT INTO disk_alerts (disk, announced_at) VALUES (?1, ?2) ON CONFLICT (disk) DO NOTHING",
                params![disk, format_time(&at)],
            )
            .map_err(|e| self.err(e))?;
        Ok(inserted == 1)
    }

    fn clear_disk_alert(&self, disk: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM disk_alerts WHERE disk = ?1", [disk])
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
