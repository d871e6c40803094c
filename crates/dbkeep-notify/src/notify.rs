//! Saying that something happened: ping URLs and webhooks, each on a thread of its own with
//! retries, so that no receiver (down, slow, hanging) can fail or delay a backup. Every
//! delivery that fails is logged and recorded in the catalog (`/metrics` counts them).

mod email;
mod http;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use dbkeep_config::config::Config;

use dbkeep_model::catalog::{BackupId, BackupRecord, Status};
use dbkeep_model::deliveries::{Deliveries, Delivery};
use dbkeep_model::vocab::EventKind;

/// How often a delivery is tried before it counts as failed.
const TRIES: u32 = 3;
/// The pause after the first failed try; it doubles after each.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// What happened, as every channel is told it.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// What kind of thing happened.
    pub event: EventKind,
    /// The database it happened to.
    pub database: String,
    /// The backup's status, as in `list --json`.
    pub status: Option<Status>,
    /// The backup.
    pub backup_id: Option<BackupId>,
    /// Its file.
    pub file_name: Option<String>,
    /// Its size.
    pub size_bytes: Option<u64>,
    /// How long it took.
    pub duration_ms: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// The machine dbkeep runs on.
    pub host: String,
}

impl Event {
    /// An event about `database` with no backup to name.
    pub fn about(event: EventKind, database: &str) -> Event {
        Event {
            event,
            database: database.to_string(),
            status: None,
            backup_id: None,
            file_name: None,
            size_bytes: None,
            duration_ms: None,
            error: None,
            started_at: None,
            finished_at: None,
            host: host(),
        }
    }

    /// An event about `record`.
    pub fn of(event: EventKind, record: &BackupRecord) -> Event {
        Event {
            event,
            database: record.database.clone(),
            status: Some(record.status),
            backup_id: Some(record.id),
            file_name: record.file_name.clone(),
            size_bytes: record.size_bytes,
            duration_ms: record.duration_ms,
            error: record.error.clone(),
            started_at: Some(record.started_at),
            finished_at: record.finished_at,
            host: host(),
        }
    }

    /// A one-line summary, for chat messages: the subject, the backup and the error.
    pub fn summary(&self) -> String {
        let mut line = self.subject();
        if let Some(id) = self.backup_id {
            line.push_str(&format!(" (#{id})"));
        }
        if let Some(e) = &self.error {
            line.push_str(": ");
            let first = e.lines().next().unwrap_or_default();
            line.push_str(&dbkeep_model::text::escape_controls(first, false));
        }
        line
    }

    /// What happened, in a few words: `dbkeep: backup of app failed on web-1`.
    pub fn subject(&self) -> String {
        let what = match self.event {
            // About the disk every database's local backups share, not about one of them.
            EventKind::DiskFilling => {
                return format!(
                    "dbkeep: the disk of the backup folder is filling up on {}",
                    self.host
                );
            }
            EventKind::DatabaseFound => {
                return format!(
                    "dbkeep: found database {} on {}; it is backed up from now on",
                    self.database, self.host
                );
            }
            EventKind::DatabaseGone => {
                return format!(
                    "dbkeep: database {} is gone from its server; its backups are kept (seen from {})",
                    self.database, self.host
                );
            }
            EventKind::WalArchiveStalled => {
                return format!(
                    "dbkeep: no WAL of server {} reached its archive lately though it wrote (seen from {})",
                    self.database, self.host
                );
            }
            EventKind::WalArchiveFailing => {
                return format!(
                    "dbkeep: archiving the WAL of server {} fails (seen from {})",
                    self.database, self.host
                );
            }
            EventKind::Start => "started",
            EventKind::Success => "succeeded",
            EventKind::Failure => "failed",
            EventKind::Suspicious => "is suspiciously small",
            EventKind::VerifyFailed => "failed its verification",
            EventKind::Stale => "is stale",
            EventKind::OffsiteFailed => "did not reach an off-site destination",
            EventKind::Test => "is a test message: notifications reach this channel",
        };
        format!(
            "dbkeep: backup of {} {what} on {}",
            self.database, self.host
        )
    }
}

/// Whether a successful backup of `size` bytes is suspicious beside the `previous` one of its
/// database: less than half its size (a table emptied by mistake, say).
pub fn suspicious(size: Option<u64>, previous: Option<u64>) -> bool {
    matches!((size, previous), (Some(size), Some(previous)) if size.saturating_mul(2) < previous)
}

/// The successful backups among `records` (newest first, as the catalog lists them) that are
/// suspicious beside the next older success of the same database in the list.
pub fn suspicious_ids(records: &[BackupRecord]) -> std::collections::HashSet<BackupId> {
    let good: Vec<&BackupRecord> = records
        .iter()
        .filter(|r| r.status == Status::Success)
        .collect();
    good.iter()
        .enumerate()
        .filter(|(i, r)| {
            let older = good[i + 1..].iter().find(|o| o.database == r.database);
            older.is_some_and(|o| suspicious(r.size_bytes, o.size_bytes))
        })
        .map(|(_, r)| r.id)
        .collect()
}

/// This machine's name.
pub fn host() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// Opens and closes a TCP connection to `host:port` (each of its addresses in turn) within
/// `limit`: where it connected, or why not.
fn connect(host: &str, port: u16, limit: Duration) -> Result<String, String> {
    use std::net::ToSocketAddrs;
    let addresses = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let mut last = format!("{host} has no address");
    for address in addresses {
        match std::net::TcpStream::connect_timeout(&address, limit) {
            Ok(_) => return Ok(format!("{host}:{port} answers")),
            Err(e) => last = format!("cannot connect to {host}:{port} ({address}): {e}"),
        }
    }
    Err(last)
}

/// A place events go.
pub trait Channel: Send + Sync {
    /// Its name in logs, metrics and the catalog: a configured name or the scheme and host of
    /// its URL, never the path or query, where secrets are.
    fn name(&self) -> String;
    /// Whether it wants `event` about `database`.
    fn wants(&self, event: EventKind, database: &str) -> bool;
    /// Delivers `event` once.
    ///
    /// # Errors
    /// Why it was not delivered.
    fn send(&self, event: &Event) -> Result<(), String>;
    /// Where it connects (host and port), for a check that sends nothing.
    fn address(&self) -> Option<(String, u16)>;
}

/// `url`'s host and port (the scheme's own when it names none).
pub(crate) fn address_of(url: &url::Url) -> Option<(String, u16)> {
    let host = match url.host()? {
        url::Host::Ipv6(address) => address.to_string(),
        host => host.to_string(),
    };
    Some((host, url.port_or_known_default()?))
}

/// Sends events to every channel that wants them, in the background.
pub struct Notifier {
    /// Replaced when the databases in force change (discovery): ping channels serve them.
    channels: std::sync::RwLock<Arc<Vec<Arc<dyn Channel>>>>,
    /// Where the deliveries that failed are recorded: the catalog.
    deliveries: Arc<dyn Deliveries>,
    pending: Mutex<Vec<JoinHandle<()>>>,
}

impl Notifier {
    /// The channels `config` names; failed deliveries recorded in `deliveries`.
    pub fn new(config: &Config, deliveries: Arc<dyn Deliveries>) -> Notifier {
        Notifier {
            channels: std::sync::RwLock::new(Arc::new(channels(config))),
            deliveries,
            pending: Mutex::new(Vec::new()),
        }
    }

    /// How many notifications failed after every try, per channel.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    pub fn failed(&self) -> dbkeep_model::error::Result<Vec<(String, u64)>> {
        self.deliveries.failed_deliveries()
    }

    /// The channels now.
    fn channels(&self) -> Arc<Vec<Arc<dyn Channel>>> {
        Arc::clone(&self.channels.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Takes the channels of `config` from now on: the databases in force changed (a server's
    /// discovery found some), and a ping channel serves a set of databases.
    pub fn reconfigure(&self, config: &Config) {
        *self.channels.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(channels(config));
    }

    /// Whether any channel is configured.
    pub fn is_empty(&self) -> bool {
        self.channels().is_empty()
    }

    /// Sends `event` to every channel that wants it, each on a thread of its own.
    pub fn notify(&self, event: Event) {
        let event = Arc::new(event);
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|h| !h.is_finished());
        for channel in self.channels().iter() {
            if !channel.wants(event.event, &event.database) {
                continue;
            }
            let (channel, event) = (Arc::clone(channel), Arc::clone(&event));
            let deliveries = Arc::clone(&self.deliveries);
            let spawned = std::thread::Builder::new()
                .name("dbkeep-notify".into())
                .spawn(move || {
                    deliver(channel.as_ref(), &event, deliveries.as_ref());
                });
            match spawned {
                Ok(handle) => pending.push(handle),
                Err(e) => tracing::warn!(error = %e, "could not start a notification thread"),
            }
        }
    }

    /// Sends a test event to every channel that takes one (webhooks; a ping would be a real
    /// signal to its monitor), once each, and says how each went.
    pub fn test(&self) -> Vec<(String, Result<(), String>)> {
        let event = Event {
            finished_at: Some(Utc::now()),
            ..Event::about(EventKind::Test, "-")
        };
        self.channels()
            .iter()
            .filter(|c| c.wants(EventKind::Test, "-"))
            .map(|c| (c.name(), c.send(&event)))
            .collect()
    }

    /// Whether each channel's server answers: a connection opened and closed within `limit`,
    /// nothing sent. Each channel's name, and where it connected or why it could not.
    pub fn reach(&self, limit: Duration) -> Vec<(String, Result<String, String>)> {
        self.channels()
            .iter()
            .map(|c| {
                let reached = match c.address() {
                    None => Err("it names no server to connect to".to_string()),
                    Some((host, port)) => connect(&host, port, limit),
                };
                (c.name(), reached)
            })
            .collect()
    }

    /// Waits up to `limit` for the deliveries under way (a command that is about to exit).
    pub fn wait(&self, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        let handles: Vec<_> =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        for handle in handles {
            while !handle.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if handle.is_finished() {
                let _ = handle.join();
            }
        }
    }
}

/// The channels `config` names.
fn channels(config: &Config) -> Vec<Arc<dyn Channel>> {
    let mut out = http::channels(config);
    if let Some(email) = &config.notify.email {
        out.push(Arc::new(email::EmailChannel {
            email: email.clone(),
            public_url: config.web.public_url.clone(),
        }));
    }
    out
}

/// Tries `channel` up to [`TRIES`] times, then records the outcome.
fn deliver(channel: &dyn Channel, event: &Event, deliveries: &dyn Deliveries) {
    let mut backoff = FIRST_BACKOFF;
    let mut error = None;
    for attempt in 1..=TRIES {
        match channel.send(event) {
            Ok(()) => {
                error = None;
                break;
            }
            Err(e) => {
                tracing::debug!(channel = %channel.name(), attempt, error = %e, "notification not delivered");
                error = Some(e);
                if attempt < TRIES {
                    std::thread::sleep(backoff);
                    backoff *= 2;
                }
            }
        }
    }
    if let Some(e) = &error {
        tracing::warn!(channel = %channel.name(), event = %event.event, database = %event.database, error = %e, "notification failed after {TRIES} tries");
    }
    // Only failures are kept: a delivered one needs no record.
    if let Some(error) = error {
        let delivery = Delivery {
            at: Utc::now(),
            channel: channel.name(),
            event: event.event,
            database: event.database.clone(),
            backup_id: event.backup_id,
            error: Some(error),
        };
        if let Err(e) = deliveries.record_delivery(&delivery) {
            tracing::warn!(error = %e, "could not record a failed notification");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_filling_up_is_said_of_the_disk_not_of_a_backup() {
        let event = Event {
            error: Some("/var/backups: 2 GiB free, full in about 3 days".into()),
            host: "web-1".into(),
            ..Event::about(EventKind::DiskFilling, "-")
        };
        assert_eq!(
            event.summary(),
            "dbkeep: the disk of the backup folder is filling up on web-1: /var/backups: 2 GiB free, full in about 3 days"
        );
        assert_eq!(
            EventKind::from_word("disk_filling"),
            Some(EventKind::DiskFilling)
        );
        assert!(dbkeep_config::config::DEFAULT_ON.contains(&EventKind::DiskFilling));
    }
}
