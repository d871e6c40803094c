//! Failed notifications, stale alerts and disk alerts in the PostgreSQL catalog.

use chrono::{DateTime, Utc};

use crate::postgres::PostgresCatalog;
use crate::postgres_rows::ms;
use dbkeep_model::deliveries::{Deliveries, Delivery};
use dbkeep_model::error::Result;

impl Deliveries for PostgresCatalog {
    fn record_delivery(&self, d: &Delivery) -> Result<()> {
        // Only failures are kept; a delivered notification needs no row.
        let Some(error) = &d.error else {
            return Ok(());
        };
        self.execute(
            "INSERT INTO failed_notifications (at, channel, event, database, backup_id, error)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &ms(d.at),
                &d.channel,
                &d.event.as_str(),
                &d.database,
                &d.backup_id,
                error,
            ],
        )?;
        Ok(())
    }

    fn failed_deliveries(&self) -> Result<Vec<(String, u64)>> {
        self.counts(
            "SELECT channel, count(*) FROM failed_notifications GROUP BY channel ORDER BY channel",
        )
    }

    fn stale_announced(&self) -> Result<Vec<(String, Option<DateTime<Utc>>)>> {
        self.rows(
            "SELECT database, last_success FROM stale_alerts ORDER BY database",
            &[],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
        )
    }

    fn set_stale_announced(
        &self,
        database: &str,
        announced: Option<(Option<DateTime<Utc>>, DateTime<Utc>)>,
    ) -> Result<()> {
        match announced {
            Some((last, at)) => self.execute(
                "INSERT INTO stale_alerts (database, last_success, announced_at) VALUES ($1, $2, $3)
                 ON CONFLICT (database) DO UPDATE SET last_success = excluded.last_success,
                   announced_at = excluded.announced_at",
                &[&database, &last.map(ms), &ms(at)],
            ),
            None => self.execute("DELETE FROM stale_alerts WHERE database = $1", &[&database]),
        }?;
        Ok(())
    }

    fn claim_disk_alert(&self, disk: &str, at: DateTime<Utc>) -> Result<bool> {
        let inserted = self.execute(
            "INSERT INTO disk_alerts (disk, announced_at) VALUES ($1, $2) ON CONFLICT (disk) DO NOTHING",
            &[&disk, &ms(at)],
        )?;
        Ok(inserted == 1)
    }

    fn clear_disk_alert(&self, disk: &str) -> Result<()> {
        self.execute("DELETE FROM disk_alerts WHERE disk = $1", &[&disk])?;
        Ok(())
    }
}
