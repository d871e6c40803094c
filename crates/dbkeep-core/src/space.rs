//! Space: how much each database's backups use at each destination (`local`, this instance's
//! backup folder, and every `[[offsite]]` destination), how that changed over the last 30
//! days, and when the local folder's disk fills up at that pace.
//!
//! Everything is reconstructed from the catalog, never by listing a folder or a bucket:
//!
//! - A backup is at a destination from the moment it arrived there (its local file when the
//!   backup finished, an off-site copy when it was uploaded) until retention deleted it there
//!   (`pruned_at`); a local file that leaves once every destination holds a copy
//!   (`keep_local = false`) stays until the last of those copies arrived. Its bytes are its
//!   size as recorded (a copy's own recorded size off-site).
//! - **Growth over the last 30 days** is the bytes held now minus the bytes held 30 days ago,
//!   each counted as above: a database newer than that grew by all it holds, and a destination
//!   whose copies were pruned shrank by theirs.
//! - **The forecast** divides the local folder's free space by its growth per day: the 30
//!   days' growth of every database's local backups, over 30 days. Only a positive growth
//!   fills a disk; anything else is "not filling".

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};

use dbkeep_model::catalog::{BackupRecord, Status};
use dbkeep_model::copies::CopyState;

/// This instance's backup folder, as the report names it among the destinations.
pub const LOCAL: &str = "local";

/// The days growth is measured over.
pub const GROWTH_DAYS: i64 = 30;

/// A forecast under this many days announces the disk filling up (the `disk_filling` event).
pub const FILLING_WITHIN_DAYS: f64 = 7.0;

/// When one backup's bytes were at one destination: from `from` until `until` (still there
/// when `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stay {
    /// When they arrived.
    pub from: DateTime<Utc>,
    /// When retention deleted them, if it did.
    pub until: Option<DateTime<Utc>>,
}

impl Stay {
    /// Whether the bytes were there at `t`.
    pub fn at(&self, t: DateTime<Utc>) -> bool {
        self.from <= t && self.until.is_none_or(|u| u > t)
    }
}

/// One successful backup as the report reads it: where its bytes stayed, and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    /// Its database.
    pub database: String,
    /// Its local file on this instance's disk (bytes, stay), if it was ever there.
    pub local: Option<(u64, Stay)>,
    /// Its off-site copies that arrived: destination, bytes, stay.
    pub copies: Vec<(String, u64, Stay)>,
}

/// Where a backup's local file lives, for [`Holding::of`].
#[derive(Debug, Clone, Copy)]
pub enum LocalFile<'a> {
    /// Not on this instance's disk (another instance's disk, or another configuration's).
    Elsewhere,
    /// Here until retention deletes it.
    Kept,
    /// Here until every one of these destinations holds a copy (`keep_local = false`), or
    /// until retention deletes it, whichever comes first.
    UntilCopiedTo(&'a [String]),
}

impl Holding {
    /// `record` as the report reads it; `None` for a backup that never stored anything (not a
    /// success).
    pub fn of(record: &BackupRecord, local: LocalFile<'_>) -> Option<Holding> {
        if record.status != Status::Success {
            return None;
        }
        let size = record.size_bytes.unwrap_or(0);
        let arrived = record.finished_at.unwrap_or(record.started_at);
        let copies: Vec<(String, u64, Stay)> = record
            .copies
            .iter()
            .filter(|c| c.state == CopyState::Uploaded)
            .map(|c| {
                let from = c.uploaded_at.as_deref().and_then(parse).unwrap_or(arrived);
                // Pruned at a time that does not read: gone, since it came.
                let until = c.pruned_at.as_deref().map(|t| parse(t).unwrap_or(from));
                (
                    c.store.clone(),
                    c.size_bytes.unwrap_or(size),
                    Stay { from, until },
                )
            })
            .collect();
        let local = match local {
            LocalFile::Elsewhere => None,
            LocalFile::Kept => Some(record.pruned_at),
            LocalFile::UntilCopiedTo(destinations) => {
                // The local file went when the last destination's copy arrived.
                let copied = destinations
                    .iter()
                    .map(|d| copies.iter().find(|c| c.0 == *d).map(|c| c.2.from))
                    .collect::<Option<Vec<_>>>()
                    .and_then(|arrivals| arrivals.into_iter().max());
                Some(match (record.pruned_at, copied) {
                    (Some(p), Some(c)) => Some(p.min(c)),
                    (p, c) => p.or(c),
                })
            }
        };
        Some(Holding {
            database: record.database.clone(),
            local: local.map(|until| {
                (
                    size,
                    Stay {
                        from: arrived,
                        until,
                    },
                )
            }),
            copies,
        })
    }

    /// Whether any of its bytes were anywhere at some time after `t`: a backup gone everywhere
    /// before it no longer counts for a growth measured from `t` on.
    pub fn counts_after(&self, t: DateTime<Utc>) -> bool {
        let after = |s: &Stay| s.until.is_none_or(|u| u > t);
        self.local.iter().any(|(_, s)| after(s)) || self.copies.iter().any(|(_, _, s)| after(s))
    }

    /// Its stays, by destination ([`LOCAL`] for the local file).
    fn stays(&self) -> impl Iterator<Item = (&str, u64, &Stay)> {
        self.local
            .iter()
            .map(|(bytes, stay)| (LOCAL, *bytes, stay))
            .chain(self.copies.iter().map(|(d, b, s)| (d.as_str(), *b, s)))
    }
}

fn parse(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A configured database and the off-site destinations its backups are copied to: the
/// destinations the report shows for it even while they hold nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The database.
    pub database: String,
    /// The `[[offsite]]` destinations that take it, in configuration order.
    pub offsite: Vec<String>,
}

/// What one database's backups use at one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// [`LOCAL`], or an `[[offsite]]` destination's name.
    pub destination: String,
    /// How many backups it holds now.
    pub backups: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The bytes held now minus the bytes held 30 days ago (negative when it shrank).
    pub growth_30d_bytes: i64,
}

/// One database's backups, by destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSpace {
    /// The database.
    pub database: String,
    /// [`LOCAL`] first, then its configured destinations in configuration order, then any
    /// other destination that still holds its copies, by name.
    pub destinations: Vec<Usage>,
}

impl DatabaseSpace {
    /// Its usage at `destination`, if the report has one.
    pub fn at(&self, destination: &str) -> Option<&Usage> {
        self.destinations
            .iter()
            .find(|u| u.destination == destination)
    }
}

/// When the local folder's disk fills up at the pace of the last 30 days.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Forecast {
    /// The disk's free space could not be read.
    Unknown,
    /// The local backups did not grow over the last 30 days.
    NotFilling,
    /// They grew: at this pace, the free space is gone in `days`.
    Filling {
        /// The growth per day: the last 30 days' growth over 30 days.
        bytes_per_day: u64,
        /// The free space over that growth.
        days: f64,
    },
}

impl Forecast {
    /// The days until the disk is full, when it is filling.
    pub fn days(&self) -> Option<f64> {
        match self {
            Forecast::Filling { days, .. } => Some(*days),
            _ => None,
        }
    }

    /// Whether the disk is full within `days` at this pace.
    pub fn full_within(&self, days: f64) -> bool {
        self.days().is_some_and(|d| d < days)
    }
}

/// The local folder's disk: its free space and forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct Disk {
    /// The backup folder.
    pub dir: PathBuf,
    /// Bytes free there for dbkeep (an unprivileged writer), when they could be read.
    pub free_bytes: Option<u64>,
    /// What every database's local backups use there.
    pub bytes: u64,
    /// Their growth over the last 30 days.
    pub growth_30d_bytes: i64,
    /// When the disk is full at that pace.
    pub forecast: Forecast,
}

impl Disk {
    /// In words: `40.00 GiB free, full in about 90 days` (`… in about 3 years` from two years
    /// on, `… in over 100 years`; or `not filling`, or `free space unknown`).
    pub fn summary(&self) -> String {
        let Some(free) = self.free_bytes else {
            return "free space unknown".to_string();
        };
        let free = indicatif::HumanBytes(free);
        match self.forecast {
            Forecast::Filling { days, .. } if days < 1.0 => {
                format!("{free} free, full in less than a day")
            }
            Forecast::Filling { days, .. } if days < 730.0 => {
                let days = days.floor() as u64;
                let unit = if days == 1 { "day" } else { "days" };
                format!("{free} free, full in about {days} {unit}")
            }
            Forecast::Filling { days, .. } if days < 36_500.0 => {
                format!(
                    "{free} free, full in about {} years",
                    (days / 365.0).floor()
                )
            }
            Forecast::Filling { .. } => format!("{free} free, full in over 100 years"),
            _ => format!("{free} free, not filling"),
        }
    }
}

/// Every database's space and the local disk's forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    /// When it was measured.
    pub at: DateTime<Utc>,
    /// Each database of the layouts, in their order.
    pub databases: Vec<DatabaseSpace>,
    /// The local folder's disk.
    pub disk: Disk,
}

impl Space {
    /// The space of `database`, if the report has it.
    pub fn database(&self, database: &str) -> Option<&DatabaseSpace> {
        self.databases.iter().find(|d| d.database == database)
    }
}

/// A size with its sign, in binary units: `+300.00 MiB`, `-1.20 GiB`, `+0 B`.
pub fn signed_size(bytes: i64) -> String {
    let sign = if bytes < 0 { '-' } else { '+' };
    format!("{sign}{}", indicatif::HumanBytes(bytes.unsigned_abs()))
}

/// The space report of `layouts` at `now`, from `holdings` (each successful backup, as
/// [`Holding::of`] reads it; holdings of other databases are passed over), with the backup
/// folder `dir` and the bytes free on its disk (`None` when they could not be read).
pub fn report(
    holdings: &[Holding],
    layouts: &[Layout],
    now: DateTime<Utc>,
    dir: PathBuf,
    free_bytes: Option<u64>,
) -> Space {
    let then = now - Duration::days(GROWTH_DAYS);
    // (database, destination) -> (backups now, bytes now, bytes then).
    let mut sums: BTreeMap<(&str, &str), (u64, u64, u64)> = BTreeMap::new();
    for h in holdings {
        for (destination, bytes, stay) in h.stays() {
            let (now_here, then_here) = (stay.at(now), stay.at(then));
            if !now_here && !then_here {
                continue;
            }
            let sum = sums.entry((&h.database, destination)).or_default();
            if now_here {
                sum.0 += 1;
                sum.1 += bytes;
            }
            if then_here {
                sum.2 += bytes;
            }
        }
    }
    let usage = |database: &str, destination: &str| {
        let (backups, bytes, then) = sums
            .get(&(database, destination))
            .copied()
            .unwrap_or_default();
        Usage {
            destination: destination.to_string(),
            backups,
            bytes,
            growth_30d_bytes: signed(bytes) - signed(then),
        }
    };
    let databases: Vec<DatabaseSpace> = layouts
        .iter()
        .map(|layout| {
            let mut destinations = vec![usage(&layout.database, LOCAL)];
            destinations.extend(layout.offsite.iter().map(|d| usage(&layout.database, d)));
            // Destinations no longer configured for it that still hold (or held) its copies.
            for (_, destination) in sums.keys().filter(|(db, d)| {
                *db == layout.database && *d != LOCAL && !layout.offsite.iter().any(|o| o == d)
            }) {
                destinations.push(usage(&layout.database, destination));
            }
            DatabaseSpace {
                database: layout.database.clone(),
                destinations,
            }
        })
        .collect();
    let local = databases.iter().filter_map(|d| d.at(LOCAL));
    let (bytes, growth) = local.fold((0u64, 0i64), |(b, g), u| {
        (b + u.bytes, g.saturating_add(u.growth_30d_bytes))
    });
    let forecast = match free_bytes {
        None => Forecast::Unknown,
        Some(_) if growth <= 0 => Forecast::NotFilling,
        Some(free) => {
            let per_day = growth as f64 / GROWTH_DAYS as f64;
            Forecast::Filling {
                bytes_per_day: per_day.round() as u64,
                days: free as f64 / per_day,
            }
        }
    };
    Space {
        at: now,
        databases,
        disk: Disk {
            dir,
            free_bytes,
            bytes,
            growth_30d_bytes: growth,
            forecast,
        },
    }
}

fn signed(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// The holdings last read from the catalog, under its change stamp and the time they were read
/// at: `/metrics`, the pages and the service's check read them again only when the catalog
/// changed.
#[derive(Default)]
pub struct HoldingsCache {
    kept: Mutex<Option<Kept>>,
}

struct Kept {
    stamp: i64,
    read_at: DateTime<Utc>,
    holdings: Arc<Vec<Holding>>,
}

impl std::fmt::Debug for HoldingsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HoldingsCache").finish_non_exhaustive()
    }
}

impl HoldingsCache {
    /// The holdings kept under `stamp`, when they were read at or before `now` (a clock set
    /// back reads them again: the holdings dropped as too old were judged from a later time).
    pub fn get(&self, stamp: i64, now: DateTime<Utc>) -> Option<Arc<Vec<Holding>>> {
        match &*self.kept.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(k) if k.stamp == stamp && k.read_at <= now => Some(Arc::clone(&k.holdings)),
            _ => None,
        }
    }

    /// Keeps `holdings`, read at `read_at` after the catalog showed `stamp`, without those that
    /// no longer count: gone everywhere more than 30 days before `read_at`.
    pub fn keep(
        &self,
        stamp: i64,
        read_at: DateTime<Utc>,
        holdings: Vec<Holding>,
    ) -> Arc<Vec<Holding>> {
        let since = read_at - Duration::days(GROWTH_DAYS);
        let holdings: Arc<Vec<Holding>> = Arc::new(
            holdings
                .into_iter()
                .filter(|h| h.counts_after(since))
                .collect(),
        );
        *self.kept.lock().unwrap_or_else(PoisonError::into_inner) = Some(Kept {
            stamp,
            read_at,
            holdings: Arc::clone(&holdings),
        });
        holdings
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeZone;

    use super::*;
    use dbkeep_model::catalog::{CopySummary, Kind, Trigger, format_time};
    use dbkeep_model::vocab::Compression;

    const MIB: u64 = 1024 * 1024;
    const GIB: u64 = 1024 * MIB;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 2, 12, 0, 0).unwrap()
    }

    fn days_ago(days: i64) -> DateTime<Utc> {
        now() - Duration::days(days)
    }

    /// A successful backup of `database` that finished `age` days ago, of `size` bytes.
    fn backup(id: i64, database: &str, age: i64, size: u64) -> BackupRecord {
        BackupRecord {
            id,
            database: database.into(),
            kind: Kind::Sqlite,
            status: Status::Success,
            trigger: Trigger::Scheduled,
            file_name: Some(format!("{database}-{id}.db")),
            path: None,
            size_bytes: Some(size),
            sha256: None,
            compression: Compression::None,
            started_at: days_ago(age) - Duration::minutes(1),
            finished_at: Some(days_ago(age)),
            duration_ms: None,
            error: None,
            pruned_at: None,
            pinned: false,
            pin_note: None,
            verified_at: None,
            verify_level: None,
            verify_status: None,
            verify_error: None,
            encrypted: false,
            copies: Vec::new(),
            instance: None,
        }
    }

    fn pruned(mut r: BackupRecord, age: i64) -> BackupRecord {
        r.pruned_at = Some(days_ago(age));
        r
    }

    fn copied(mut r: BackupRecord, store: &str, age: i64, pruned_age: Option<i64>) -> BackupRecord {
        r.copies.push(CopySummary {
            store: store.into(),
            state: CopyState::Uploaded,
            size_bytes: r.size_bytes,
            sha256: None,
            error: None,
            uploaded_at: Some(format_time(&days_ago(age))),
            pruned_at: pruned_age.map(|a| format_time(&days_ago(a))),
        });
        r
    }

    fn layout(database: &str, offsite: &[&str]) -> Layout {
        Layout {
            database: database.into(),
            offsite: offsite.iter().map(|d| d.to_string()).collect(),
        }
    }

    fn space(records: &[BackupRecord], layouts: &[Layout], free: Option<u64>) -> Space {
        let holdings: Vec<Holding> = records
            .iter()
            .filter_map(|r| Holding::of(r, LocalFile::Kept))
            .collect();
        report(&holdings, layouts, now(), PathBuf::from("/backups"), free)
    }

    /// A daily backup of `size` for the last `days` days, each kept `keep` days.
    fn daily(database: &str, days: i64, keep: i64, size: impl Fn(i64) -> u64) -> Vec<BackupRecord> {
        (0..days)
            .map(|age| {
                let r = backup(1000 - age, database, age, size(age));
                if age >= keep {
                    pruned(r, age - keep)
                } else {
                    r
                }
            })
            .collect()
    }

    #[test]
    fn a_steady_database_does_not_grow_and_does_not_fill_the_disk() {
        // Sixty days of daily backups of one size, each kept a week: seven now, seven then.
        let records = daily("app", 60, 7, |_| 100 * MIB);
        let s = space(&records, &[layout("app", &[])], Some(10 * GIB));
        let local = s.database("app").unwrap().at(LOCAL).unwrap();
        assert_eq!(
            (local.backups, local.bytes, local.growth_30d_bytes),
            (7, 700 * MIB, 0)
        );
        assert_eq!(s.disk.forecast, Forecast::NotFilling);
        assert_eq!(s.disk.summary(), "10.00 GiB free, not filling");
    }

    #[test]
    fn a_growing_database_fills_the_disk_at_its_pace() {
        // Kept for ever, 100 MiB a day: 3000 MiB over the 30 days, 100 MiB a day.
        let records = daily("app", 60, i64::MAX, |_| 100 * MIB);
        let s = space(&records, &[layout("app", &[])], Some(500 * MIB));
        let local = s.database("app").unwrap().at(LOCAL).unwrap();
        assert_eq!(local.backups, 60);
        assert_eq!(local.growth_30d_bytes, 3000 * MIB as i64);
        assert_eq!(
            s.disk.forecast,
            Forecast::Filling {
                bytes_per_day: 100 * MIB,
                days: 5.0
            }
        );
        assert!(s.disk.forecast.full_within(FILLING_WITHIN_DAYS));
        assert_eq!(s.disk.summary(), "500.00 MiB free, full in about 5 days");
        // With more room, the same pace is no alarm.
        let roomy = space(&records, &[layout("app", &[])], Some(90 * 100 * MIB));
        assert_eq!(roomy.disk.forecast.days(), Some(90.0));
        assert!(!roomy.disk.forecast.full_within(FILLING_WITHIN_DAYS));
        let tight = space(&records, &[layout("app", &[])], Some(10 * MIB));
        assert_eq!(
            tight.disk.summary(),
            "10.00 MiB free, full in less than a day"
        );
        let years = space(&records, &[layout("app", &[])], Some(1000 * 100 * MIB));
        assert_eq!(
            years.disk.summary(),
            "97.66 GiB free, full in about 2 years"
        );
        let ages = space(&records, &[layout("app", &[])], Some(40_000 * 100 * MIB));
        assert_eq!(ages.disk.summary(), "3.81 TiB free, full in over 100 years");
    }

    #[test]
    fn a_shrinking_database_has_a_negative_growth_and_does_not_fill_the_disk() {
        // Backups that get smaller: each day 1 MiB less than the day before, kept a week.
        let records = daily("app", 60, 7, |age| (100 + age as u64) * MIB);
        let s = space(&records, &[layout("app", &[])], Some(GIB));
        let local = s.database("app").unwrap().at(LOCAL).unwrap();
        assert_eq!(local.growth_30d_bytes, -(30 * 7 * MIB as i64));
        assert_eq!(s.disk.forecast, Forecast::NotFilling);
        assert_eq!(signed_size(local.growth_30d_bytes), "-210.00 MiB");
    }

    #[test]
    fn a_new_database_grew_by_all_it_holds() {
        let records = vec![backup(2, "new", 1, 40 * MIB), backup(1, "new", 5, 60 * MIB)];
        let s = space(
            &records,
            &[layout("new", &[]), layout("empty", &[])],
            Some(GIB),
        );
        let local = s.database("new").unwrap().at(LOCAL).unwrap();
        assert_eq!(
            (local.backups, local.bytes, local.growth_30d_bytes),
            (2, 100 * MIB, 100 * MIB as i64)
        );
        // 100 MiB in 30 days: about 3.3 MiB a day, 1 GiB lasts about 307 days.
        assert_eq!(s.disk.forecast.days().map(|d| d.floor()), Some(307.0));
        // A configured database without a backup is there, with nothing.
        let empty = s.database("empty").unwrap();
        assert_eq!(
            empty.destinations,
            vec![Usage {
                destination: LOCAL.into(),
                backups: 0,
                bytes: 0,
                growth_30d_bytes: 0
            }]
        );
        assert_eq!(signed_size(0), "+0 B");
    }

    #[test]
    fn copies_pruned_off_site_shrink_that_destination_only() {
        let records = vec![
            // Uploaded 40 days ago, pruned off-site 10 days ago: held then, not now.
            copied(backup(1, "app", 40, 100 * MIB), "s3", 40, Some(10)),
            // Uploaded 35 days ago and still there.
            copied(backup(2, "app", 35, 100 * MIB), "s3", 35, None),
            // A copy that never arrived counts nowhere off-site.
            {
                let mut r = copied(backup(3, "app", 2, 100 * MIB), "s3", 2, None);
                r.copies[0].state = CopyState::Failed;
                r
            },
        ];
        let s = space(&records, &[layout("app", &["s3"])], Some(GIB));
        let app = s.database("app").unwrap();
        let s3 = app.at("s3").unwrap();
        assert_eq!((s3.backups, s3.bytes), (1, 100 * MIB));
        assert_eq!(s3.growth_30d_bytes, -(100 * MIB as i64));
        let local = app.at(LOCAL).unwrap();
        assert_eq!((local.backups, local.bytes), (3, 300 * MIB));
        assert_eq!(local.growth_30d_bytes, 100 * MIB as i64);
        assert_eq!(
            app.destinations
                .iter()
                .map(|u| u.destination.as_str())
                .collect::<Vec<_>>(),
            vec![LOCAL, "s3"]
        );
    }

    #[test]
    fn a_destination_no_longer_configured_is_shown_while_it_holds_copies() {
        let records = vec![copied(backup(1, "app", 3, 10 * MIB), "old", 3, None)];
        let s = space(&records, &[layout("app", &["s3"])], None);
        let names: Vec<&str> = s.databases[0]
            .destinations
            .iter()
            .map(|u| u.destination.as_str())
            .collect();
        assert_eq!(names, vec![LOCAL, "s3", "old"]);
        assert_eq!(s.disk.forecast, Forecast::Unknown);
        assert_eq!(s.disk.summary(), "free space unknown");
    }

    #[test]
    fn a_local_file_that_leaves_once_copied_counts_until_the_last_copy_arrived() {
        let destinations = vec!["a".to_string(), "b".to_string()];
        let r = copied(
            copied(backup(1, "app", 3, 10 * MIB), "a", 3, None),
            "b",
            2,
            None,
        );
        let h = Holding::of(&r, LocalFile::UntilCopiedTo(&destinations)).unwrap();
        assert_eq!(h.local.unwrap().1.until, Some(days_ago(2)));
        // A copy still missing: the file stays.
        let one = copied(backup(2, "app", 3, 10 * MIB), "a", 3, None);
        let h = Holding::of(&one, LocalFile::UntilCopiedTo(&destinations)).unwrap();
        assert_eq!(h.local.unwrap().1.until, None);
        // On another instance's disk: nothing here.
        assert_eq!(Holding::of(&r, LocalFile::Elsewhere).unwrap().local, None);
        // A failed backup holds nothing anywhere.
        let mut failed = backup(3, "app", 1, 0);
        failed.status = Status::Failed;
        assert_eq!(Holding::of(&failed, LocalFile::Kept), None);
    }

    #[test]
    fn the_cache_forgets_what_was_gone_everywhere_before_the_window() {
        let cache = HoldingsCache::default();
        let old = Holding::of(&pruned(backup(1, "app", 60, MIB), 45), LocalFile::Kept).unwrap();
        let recent = Holding::of(&pruned(backup(2, "app", 40, MIB), 20), LocalFile::Kept).unwrap();
        let kept = cache.keep(7, now(), vec![old, recent.clone()]);
        assert_eq!(*kept, vec![recent]);
        assert!(cache.get(7, now()).is_some());
        assert!(cache.get(8, now()).is_none(), "the catalog changed");
        assert!(
            cache.get(7, now() - Duration::hours(1)).is_none(),
            "the clock went back"
        );
    }
}
