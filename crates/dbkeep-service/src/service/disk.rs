//! The disk alert: at the pace the local backups grew over the last 30 days, the backup
//! folder's disk is full within a week ([`FILLING_WITHIN_DAYS`]). Each episode is announced
//! once (`disk_filling`); it ends when the forecast is back at two weeks or more
//! ([`RECOVERED_DAYS`]) or the disk stopped filling, and the next one is announced again. The
//! catalog keeps which disks are announced, so a restarted service, or another instance on
//! the same disk, does not announce an episode again.

use chrono::{DateTime, Utc};

use dbkeep_core::space::{FILLING_WITHIN_DAYS, Forecast, LOCAL, Space, signed_size};
use dbkeep_model::deliveries::Deliveries;
use dbkeep_model::vocab::EventKind;
use dbkeep_notify::notify::Event;

/// A forecast back at this many days (or a disk no longer filling) ends an episode: a
/// forecast that wavers around a week is not announced again and again.
pub const RECOVERED_DAYS: f64 = 14.0;

/// Whether the backup folder's disk is filling up, so that each episode is announced once.
#[derive(Debug)]
pub struct DiskWatch {
    /// The disk, as the catalog knows it: this machine and the backup folder.
    disk: String,
    /// Whether this disk's episode is announced (`Some(true)`) or over (`Some(false)`), as
    /// this watch last recorded it; `None` before its first check.
    announced: Option<bool>,
}

impl DiskWatch {
    /// A watch of the disk named `disk` (see [`DiskWatch::disk_name`]).
    pub fn new(disk: String) -> DiskWatch {
        DiskWatch {
            disk,
            announced: None,
        }
    }

    /// The name the catalog keeps a disk's episode under: the machine `host` and the backup
    /// folder `dir` (resolved, when it exists), the same for every instance and restart there.
    pub fn disk_name(host: &str, dir: &std::path::Path) -> String {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        format!("{host}:{}", dir.display())
    }

    /// Judges `space`'s forecast at `now`: the event to send when this check begins an
    /// episode (recorded in `alerts`, which only one caller of all that share it is told to
    /// announce); `None` otherwise. A forecast that cannot be made changes nothing.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    pub fn check(
        &mut self,
        alerts: &dyn Deliveries,
        space: &Space,
        now: DateTime<Utc>,
    ) -> dbkeep_model::error::Result<Option<Event>> {
        let forecast = space.disk.forecast;
        if forecast.full_within(FILLING_WITHIN_DAYS) {
            if self.announced == Some(true) {
                return Ok(None);
            }
            let claimed = alerts.claim_disk_alert(&self.disk, now)?;
            self.announced = Some(true);
            if !claimed {
                return Ok(None);
            }
            let why = describe(space);
            tracing::warn!(disk = %self.disk, reason = %why, "the backup folder's disk is filling up");
            return Ok(Some(Event {
                error: Some(why),
                finished_at: Some(now),
                ..Event::about(EventKind::DiskFilling, "-")
            }));
        }
        let recovered = match forecast {
            Forecast::Unknown => false,
            Forecast::NotFilling => true,
            Forecast::Filling { days, .. } => days >= RECOVERED_DAYS,
        };
        if recovered && self.announced != Some(false) {
            alerts.clear_disk_alert(&self.disk)?;
            self.announced = Some(false);
        }
        Ok(None)
    }
}

/// What the alert says: the folder, its free space and forecast, the pace, and the database
/// whose local backups grew the most.
fn describe(space: &Space) -> String {
    let disk = &space.disk;
    let mut why = format!("{}: {}", disk.dir.display(), disk.summary());
    if let Forecast::Filling { bytes_per_day, .. } = disk.forecast {
        why.push_str(&format!(
            " at {} a day (the local backups grew {} in the last 30 days)",
            indicatif::HumanBytes(bytes_per_day),
            signed_size(disk.growth_30d_bytes)
        ));
    }
    let most = space
        .databases
        .iter()
        .filter_map(|d| d.at(LOCAL).map(|u| (u.growth_30d_bytes, &d.database)))
        .filter(|(growth, _)| *growth > 0)
        .max();
    if let Some((growth, database)) = most {
        why.push_str(&format!(
            "; most of it {database} ({})",
            signed_size(growth)
        ));
    }
    why
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::sync::Mutex;

    use chrono::{Duration, TimeZone};

    use super::*;
    use dbkeep_core::space::{Holding, Layout, Stay, report};
    use dbkeep_model::deliveries::Delivery;

    const MIB: u64 = 1024 * 1024;

    /// The catalog's disk alerts, in memory.
    #[derive(Default)]
    struct Alerts(Mutex<BTreeMap<String, DateTime<Utc>>>);

    impl Deliveries for Alerts {
        fn record_delivery(&self, _: &Delivery) -> dbkeep_model::error::Result<()> {
            Ok(())
        }
        fn failed_deliveries(&self) -> dbkeep_model::error::Result<Vec<(String, u64)>> {
            Ok(Vec::new())
        }
        fn stale_announced(
            &self,
        ) -> dbkeep_model::error::Result<Vec<(String, Option<DateTime<Utc>>)>> {
            Ok(Vec::new())
        }
        fn set_stale_announced(
            &self,
            _: &str,
            _: Option<(Option<DateTime<Utc>>, DateTime<Utc>)>,
        ) -> dbkeep_model::error::Result<()> {
            Ok(())
        }
        fn claim_disk_alert(
            &self,
            disk: &str,
            at: DateTime<Utc>,
        ) -> dbkeep_model::error::Result<bool> {
            let mut alerts = self.0.lock().unwrap();
            if alerts.contains_key(disk) {
                return Ok(false);
            }
            alerts.insert(disk.to_string(), at);
            Ok(true)
        }
        fn clear_disk_alert(&self, disk: &str) -> dbkeep_model::error::Result<()> {
            self.0.lock().unwrap().remove(disk);
            Ok(())
        }
    }

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 2, 12, 0, 0).unwrap()
    }

    /// `app` backed up daily since 60 days before `start`, 100 MiB each, kept for ever: its
    /// local backups grow 100 MiB a day. The report at `now` with `free` bytes free.
    fn space(now: DateTime<Utc>, free: Option<u64>) -> Space {
        let holdings: Vec<Holding> = (0..60)
            .map(|age| Holding {
                database: "app".into(),
                local: Some((
                    100 * MIB,
                    Stay {
                        from: start() - Duration::days(age),
                        until: None,
                    },
                )),
                copies: Vec::new(),
            })
            .collect();
        let layouts = [Layout {
            database: "app".into(),
            offsite: Vec::new(),
        }];
        report(
            &holdings,
            &layouts,
            now,
            PathBuf::from("/var/backups"),
            free,
        )
    }

    #[test]
    fn a_disk_filling_up_is_announced_once_per_episode() {
        let alerts = Alerts::default();
        let mut watch = DiskWatch::new("web-1:/var/backups".into());
        let minute = |n: i64| start() + Duration::minutes(n);
        let check = |watch: &mut DiskWatch, n: i64, free: Option<u64>| {
            watch
                .check(&alerts, &space(minute(n), free), minute(n))
                .unwrap()
        };
        // 20 days of room at 100 MiB a day: no alarm.
        assert!(check(&mut watch, 0, Some(2000 * MIB)).is_none());
        // 5 days: announced, once.
        let event = check(&mut watch, 1, Some(500 * MIB)).unwrap();
        assert_eq!(event.event, EventKind::DiskFilling);
        let why = event.error.unwrap();
        assert!(
            why.starts_with(
                "/var/backups: 500.00 MiB free, full in about 5 days at 100.00 MiB a day"
            ),
            "{why}"
        );
        assert!(why.ends_with("; most of it app (+2.93 GiB)"), "{why}");
        for n in 2..5 {
            assert!(
                check(&mut watch, n, Some(500 * MIB)).is_none(),
                "minute {n}"
            );
        }
        // A restarted service, or another instance on this disk: already announced.
        let mut restarted = DiskWatch::new("web-1:/var/backups".into());
        assert!(check(&mut restarted, 5, Some(400 * MIB)).is_none());
        // Another disk is its own episode.
        let mut other = DiskWatch::new("web-2:/var/backups".into());
        assert!(check(&mut other, 5, Some(400 * MIB)).is_some());
        // 10 days, then 5 again: still the same episode (10 days is not recovered).
        assert!(check(&mut watch, 6, Some(1000 * MIB)).is_none());
        assert!(check(&mut watch, 7, Some(500 * MIB)).is_none());
        // A free space that cannot be read changes nothing.
        assert!(check(&mut watch, 8, None).is_none());
        assert!(check(&mut restarted, 8, None).is_none());
        // Room for 20 days: the episode ends; the next is announced again, by one watch only.
        assert!(check(&mut watch, 9, Some(2000 * MIB)).is_none());
        assert!(alerts.0.lock().unwrap().get("web-1:/var/backups").is_none());
        assert!(check(&mut watch, 10, Some(300 * MIB)).is_some());
        assert!(check(&mut restarted, 11, Some(300 * MIB)).is_none());
        assert!(check(&mut watch, 12, Some(300 * MIB)).is_none());
    }

    #[test]
    fn a_disk_that_stops_filling_ends_its_episode() {
        let alerts = Alerts::default();
        let mut watch = DiskWatch::new("web-1:/var/backups".into());
        let now = start();
        assert!(
            watch
                .check(&alerts, &space(now, Some(100 * MIB)), now)
                .unwrap()
                .is_some()
        );
        // Sixty days later, with no backup since: nothing grew in the last 30 days.
        let later = now + Duration::days(60);
        let quiet = space(later, Some(100 * MIB));
        assert_eq!(quiet.disk.forecast, Forecast::NotFilling);
        assert!(watch.check(&alerts, &quiet, later).unwrap().is_none());
        assert!(alerts.0.lock().unwrap().is_empty());
    }

    #[test]
    fn a_disk_is_named_by_its_machine_and_resolved_folder() {
        let here = std::env::temp_dir();
        let resolved = std::fs::canonicalize(&here).unwrap();
        assert_eq!(
            DiskWatch::disk_name("web-1", &here.join(".")),
            format!("web-1:{}", resolved.display())
        );
        assert_eq!(
            DiskWatch::disk_name("web-1", std::path::Path::new("/no/such/folder")),
            "web-1:/no/such/folder"
        );
    }
}
