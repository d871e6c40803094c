//! The scheduler's decisions as functions of the clock: when each schedule fires next, which
//! fires are due, and which were missed while no dbkeep was running. Claims in the catalog
//! make each fire run once, however many processes share it.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use croner::Cron;

use dbkeep_config::config::Config;
use dbkeep_config::config::cron::{next_fire, previous_fire};
use dbkeep_model::catalog::{Catalog, FireId, Outcome};
use dbkeep_model::error::Result;

/// At most this many missed fires of one schedule are recorded one by one after a downtime.
const MISSED_RECORDED: usize = 100;

/// What the schedule of a restore drill is recorded as (before its cron expression), beside the
/// databases' backup schedules.
pub const DRILL_PREFIX: &str = "verify ";

/// How a restore drill's fire says that the verification failed, before why.
const DRILL_FAILED: &str = "verification failed: ";

/// The detail a restore drill's fire records when its verification failed for `why`.
pub fn drill_failed(why: &impl std::fmt::Display) -> String {
    format!("{DRILL_FAILED}{why}")
}

/// Whether a restore drill's fire `detail` says its verification failed.
pub fn is_failed_drill(detail: &str) -> bool {
    detail.starts_with(DRILL_FAILED)
}

/// A fire this process claimed and must now run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Its row in the job history.
    pub fire_id: FireId,
    /// The database to back up.
    pub database: String,
    /// The cron expression that fired.
    pub schedule: String,
    /// The instant the schedule named.
    pub planned_at: DateTime<Utc>,
}

impl Claimed {
    /// Whether this is a restore drill (verify the newest backup) rather than a backup.
    pub fn is_drill(&self) -> bool {
        self.schedule.starts_with(DRILL_PREFIX)
    }
}

struct Job {
    database: String,
    expr: String,
    cron: Cron,
    /// How much later than the cron time it fires: its share of its server's `spread`.
    offset: Duration,
    next: Option<DateTime<Utc>>,
}

impl Job {
    /// The first fire after `t`, its offset included.
    fn next_after(&self, tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        next_fire(&self.cron, tz, t - self.offset).map(|f| f + self.offset)
    }

    /// The last fire at or before `t` (as [`previous_fire`]), its offset included.
    fn previous_before(&self, tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        previous_fire(&self.cron, tz, t - self.offset).map(|f| f + self.offset)
    }
}

/// How much later than its cron times `db` fires: its share of its server's `spread`.
pub fn offset_of(config: &Config, db: &dbkeep_config::config::DatabaseConfig) -> Duration {
    db.server()
        .and_then(|s| config.server(s))
        .and_then(|s| Duration::from_std(s.offset(&db.name)).ok())
        .unwrap_or_else(Duration::zero)
}

/// Every schedule of every configured database and when each fires next.
pub struct Scheduler {
    jobs: Vec<Job>,
    tz: Tz,
    misfire_grace: Duration,
    /// This instance's name, recorded with each fire it claims.
    claimant: String,
}

/// One schedule and its next fire, for logs and `dbkeep schedule`.
#[derive(Debug, Clone)]
pub struct Upcoming {
    /// The database.
    pub database: String,
    /// The cron expression.
    pub schedule: String,
    /// Its next fire, if it ever fires again.
    pub next: Option<DateTime<Utc>>,
}

impl Scheduler {
    /// The schedules of `config`, none planned yet: call [`Scheduler::start`].
    pub fn new(config: &Config) -> Self {
        let drill = config.service.verify_schedule.as_ref();
        let jobs = config
            .databases
            .iter()
            .filter(|db| db.is_scheduled())
            .flat_map(|db| {
                let offset = offset_of(config, db);
                let backups = db.schedules.iter().map(move |s| Job {
                    database: db.name.clone(),
                    expr: s.expr.clone(),
                    cron: s.cron.clone(),
                    offset,
                    next: None,
                });
                let drills = drill.map(|s| Job {
                    database: db.name.clone(),
                    expr: format!("{DRILL_PREFIX}{}", s.expr),
                    cron: s.cron.clone(),
                    offset,
                    next: None,
                });
                backups.chain(drills)
            })
            .collect();
        Scheduler {
            jobs,
            tz: config.service.timezone,
            misfire_grace: Duration::from_std(config.service.misfire_grace)
                .unwrap_or(Duration::hours(1)),
            claimant: dbkeep_model::instances::Instance::this(
                config.service.instance_name.as_deref(),
            )
            .name,
        }
    }

    /// The zone schedules are read in.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Plans every schedule from `now`. Fires that passed since the last one recorded in the
    /// catalog are recorded as missed; when the latest of them is within `misfire_grace`, it
    /// is claimed instead, as one catch-up run for them all. Returns the catch-ups to run.
    ///
    /// # Errors
    /// When the catalog cannot be read or written.
    pub fn start(&mut self, catalog: &dyn Catalog, now: DateTime<Utc>) -> Result<Vec<Claimed>> {
        let mut catch_ups = Vec::new();
        let pairs: Vec<(String, String)> = self
            .jobs
            .iter()
            .map(|j| (j.database.clone(), j.expr.clone()))
            .collect();
        let lasts = catalog.last_fires(&pairs)?;
        for (job, last) in self.jobs.iter_mut().zip(lasts) {
            job.next = job.next_after(self.tz, now);
            let Some(last) = last.map(|(fire, _)| fire.planned_at) else {
                continue; // Never ran here: nothing can have been missed.
            };
            // Newest first, back to the last recorded fire.
            let mut missed = Vec::new();
            let mut cursor = now;
            while let Some(t) = job.previous_before(self.tz, cursor).filter(|t| *t > last) {
                missed.push(t);
                if missed.len() > MISSED_RECORDED {
                    break;
                }
                cursor = t - Duration::milliseconds(1);
            }
            let more = missed.len() > MISSED_RECORDED;
            missed.truncate(MISSED_RECORDED);
            let Some(&latest) = missed.first() else {
                continue;
            };
            let count = if more {
                format!("more than {MISSED_RECORDED}")
            } else {
                missed.len().to_string()
            };
            let catch_up = now - latest <= self.misfire_grace;
            for (i, &t) in missed.iter().enumerate() {
                let detail = if i + 1 == missed.len() && more {
                    "dbkeep was not running (earlier missed fires are not listed)"
                } else {
                    "dbkeep was not running"
                };
                if i == 0 && catch_up {
                    let detail = format!("catch-up run for {count} missed fire(s)");
                    if let Some(fire_id) = catalog.claim_fire(
                        &job.database,
                        &job.expr,
                        t,
                        Outcome::Running,
                        Some(&detail),
                        Some(&self.claimant),
                    )? {
                        catch_ups.push(Claimed {
                            fire_id,
                            database: job.database.clone(),
                            schedule: job.expr.clone(),
                            planned_at: t,
                        });
                    }
                } else {
                    catalog.claim_fire(
                        &job.database,
                        &job.expr,
                        t,
                        Outcome::Missed,
                        Some(detail),
                        Some(&self.claimant),
                    )?;
                }
            }
        }
        Ok(catch_ups)
    }

    /// Claims every fire due at `now` and plans each schedule's next fire. A fire another
    /// process claimed first is left to it. A schedule that fell behind by several fires
    /// (the process was suspended) fires once.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    pub fn due(&mut self, catalog: &dyn Catalog, now: DateTime<Utc>) -> Result<Vec<Claimed>> {
        let mut claimed = Vec::new();
        for job in &mut self.jobs {
            let Some(planned) = job.next.filter(|t| *t <= now) else {
                continue;
            };
            if let Some(fire_id) = catalog.claim_fire(
                &job.database,
                &job.expr,
                planned,
                Outcome::Running,
                None,
                Some(&self.claimant),
            )? {
                claimed.push(Claimed {
                    fire_id,
                    database: job.database.clone(),
                    schedule: job.expr.clone(),
                    planned_at: planned,
                });
            }
            job.next = job.next_after(self.tz, now.max(planned));
        }
        Ok(claimed)
    }

    /// When the next fire of any schedule is due.
    pub fn next_wakeup(&self) -> Option<DateTime<Utc>> {
        self.jobs.iter().filter_map(|j| j.next).min()
    }

    /// Every schedule with its next planned fire.
    pub fn upcoming(&self) -> Vec<Upcoming> {
        self.jobs
            .iter()
            .map(|j| Upcoming {
                database: j.database.clone(),
                schedule: j.expr.clone(),
                next: j.next,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
