//! Instances: the dbkeep processes sharing a catalog, each with a name, heartbeating into it
//! while it serves, so that every instance (and the web admin) can tell which are alive and
//! what each is running.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::Result;

/// Who holds leases: this process, as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Its name (`instance_name`; by default `<host>:<pid>`).
    pub name: String,
    /// The machine it runs on.
    pub host: String,
    /// Its process id on that machine.
    pub pid: u32,
}

impl Instance {
    /// This process, named `name` (or `<host>:<pid>`).
    pub fn this(name: Option<&str>) -> Instance {
        let host = host_name();
        let pid = std::process::id();
        Instance {
            name: name.map_or_else(|| format!("{host}:{pid}"), str::to_string),
            host,
            pid,
        }
    }

    /// Whether a holder recorded as `host`/`pid` is a process of this machine that is gone.
    pub fn is_gone_here(host: &str, pid: u32) -> bool {
        if host != host_name() {
            return false;
        }
        let Ok(raw) = i32::try_from(pid) else {
            return false;
        };
        match rustix::process::Pid::from_raw(raw) {
            Some(pid) => matches!(
                rustix::process::test_kill_process(pid),
                Err(rustix::io::Errno::SRCH)
            ),
            None => false,
        }
    }
}

/// This machine's host name.
pub fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// How long an instance that stopped heartbeating is still listed (as not alive).
pub const LISTED_FOR: Duration = Duration::from_secs(24 * 3600);

/// The instances listed (those that stopped heartbeating within [`LISTED_FOR`]), alive when
/// their last heartbeat is within `lease_timeout`.
///
/// # Errors
/// When the catalog cannot be read.
pub fn listed(instances: &dyn Instances, lease_timeout: Duration) -> Result<Vec<InstanceRecord>> {
    instances.instances(lease_timeout, LISTED_FOR)
}

/// An instance as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstanceRecord {
    /// Its name.
    pub name: String,
    /// The machine it runs on.
    pub host: String,
    /// Its process id there.
    pub pid: u32,
    /// The dbkeep version it runs.
    pub version: String,
    /// When it started.
    #[serde(serialize_with = "rfc3339")]
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    #[serde(serialize_with = "rfc3339")]
    pub heartbeat_at: DateTime<Utc>,
    /// What it was running at its last heartbeat (databases being backed up or verified).
    pub running: Vec<String>,
    /// Whether its last heartbeat is recent (within `lease_timeout`, by the catalog's clock).
    pub alive: bool,
}

/// Where instances heartbeat: the catalog.
pub trait Instances: Send + Sync {
    /// Records that `instance` (running `version`, started at `started_at`) is alive and
    /// running `running`.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn heartbeat(
        &self,
        instance: &Instance,
        version: &str,
        started_at: DateTime<Utc>,
        running: &[String],
    ) -> Result<()>;

    /// Every instance that heartbeat within `forget_after`, by name; `alive` when within
    /// `alive_within`.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    fn instances(
        &self,
        alive_within: Duration,
        forget_after: Duration,
    ) -> Result<Vec<InstanceRecord>>;

    /// Removes `name`'s row (a clean stop).
    ///
    /// # Errors
    /// When the catalog cannot be written.
    fn depart(&self, name: &str) -> Result<()>;

    /// The catalog's own clock, when it runs on a server (PostgreSQL): leases expire and audit
    /// rows are dated by it, so `dbkeep doctor` compares this machine's clock with it. `None`
    /// for a catalog on this machine.
    ///
    /// # Errors
    /// When the catalog cannot be asked.
    fn server_time(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(None)
    }
}

fn rfc3339<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&crate::clock::format_time(t))
}
