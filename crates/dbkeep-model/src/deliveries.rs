//! Notification deliveries as the catalog records them, failed ones counted for `/metrics`.

use chrono::{DateTime, Utc};

use crate::vocab::BackupId;
use crate::vocab::EventKind;

/// One delivery, as the catalog keeps it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// When it ended.
    pub at: DateTime<Utc>,
    /// The channel, by name or host, never by a URL's path (`webhook ops-slack`,
    /// `webhook https://hooks.example.com`, `ping https://hc-ping.com`).
    pub channel: String,
    /// The event it carried.
    pub event: EventKind,
    /// Its database.
    pub database: String,
    /// Its backup.
    pub backup_id: Option<BackupId>,
    /// Why it failed, after every try; `None` when it was delivered.
    pub error: Option<String>,
}

/// Where deliveries are recorded: the catalog.
pub trait Deliveries: Send + Sync {
    /// Records one delivery.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn record_delivery(&self, delivery: &Delivery) -> crate::error::Result<()>;

    /// How many deliveries failed, per channel.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn failed_deliveries(&self) -> crate::error::Result<Vec<(String, u64)>>;

    /// The databases announced stale, each with the last success it was judged by.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn stale_announced(&self) -> crate::error::Result<Vec<(String, Option<DateTime<Utc>>)>>;

    /// Records that `database` was announced stale at `at`, judged by `last_success`
    /// (`Some`), or that its episode ended (`None`).
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn set_stale_announced(
        &self,
        database: &str,
        announced: Option<(Option<DateTime<Utc>>, DateTime<Utc>)>,
    ) -> crate::error::Result<()>;

    /// Records that the disk named `disk` (a host and a backup folder) was announced filling
    /// up at `at`, unless its announcement is recorded already. True when this call recorded
    /// it: only that caller announces it, however many instances or restarts check the disk.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn claim_disk_alert(&self, disk: &str, at: DateTime<Utc>) -> crate::error::Result<bool>;

    /// Ends `disk`'s episode of filling up: the next time it fills, it is announced again.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn clear_disk_alert(&self, disk: &str) -> crate::error::Result<()>;
}
