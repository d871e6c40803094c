//! `/healthz` for outside monitors and `/metrics` in Prometheus text format.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;

use super::auth::Identity;
use super::{State, blocking};
use dbkeep_core::runner::View;
use dbkeep_core::verdict::FactsCache;
use dbkeep_model::catalog::BackupRecord;

/// Each configured database with its newest successful backup (this configuration's own) and
/// whether one is running.
pub(super) fn latest(
    runner: &dyn View,
    cache: &FactsCache,
) -> dbkeep_model::error::Result<Vec<(String, Option<BackupRecord>, bool)>> {
    // From the facts the verdicts are judged from: read once per change of the catalog.
    let facts = cache.get(runner)?;
    Ok(latest_of(runner, facts.iter().map(|f| &**f)))
}

/// [`latest`] from each configured database's facts, in configuration order.
fn latest_of<'a>(
    runner: &dyn View,
    facts: impl Iterator<Item = &'a dbkeep_core::verdict::Facts>,
) -> Vec<(String, Option<BackupRecord>, bool)> {
    runner
        .config()
        .databases
        .iter()
        .zip(facts)
        .map(|(db, f)| (db.name.clone(), f.last_success.clone(), f.running()))
        .collect()
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    /// How many databases are stale, unverified and not off-site, when any is: public.
    #[serde(skip_serializing_if = "Option::is_none")]
    counts: Option<Counts>,
    /// Which databases, by name: only behind a login, unless `healthz_details = true`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stale: Vec<String>,
    /// Databases whose newest backup failed its verification (a restore drill).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unverified: Vec<String>,
    /// Databases whose newest backup did not reach every off-site destination.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    not_offsite: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheduler: Option<&'static str>,
}

/// How many databases are in each unhealthy state.
#[derive(Serialize)]
struct Counts {
    stale: usize,
    unverified: usize,
    not_offsite: usize,
}

/// 200 `{"status":"ok"}` while the scheduler runs and every database has a successful backup
/// within `stale_after`; 503 saying how many databases are wrong otherwise, and which ones to
/// a logged-in user or token (to anyone with `healthz_details = true`): the names of the
/// databases are not for whoever can reach the port.
pub async fn healthz_get(state: State, headers: HeaderMap) -> Response {
    let facts = Arc::clone(&state.facts);
    let found = blocking(&state, move |r| {
        // A database gone from its server is not backed up any more: it cannot go stale.
        let config = r.config();
        let gone = |name: &str| {
            config.database(name).is_ok_and(|d| {
                d.discovered
                    .as_ref()
                    .is_some_and(|f| f.state == dbkeep_model::discovery::DiscoveryState::Gone)
            })
        };
        let mut latest = latest(r, &facts)?;
        latest.retain(|(name, _, _)| !gone(name));
        let mut not_offsite = Vec::new();
        for (name, good, _) in &latest {
            if let Some(g) = good
                && dbkeep_core::verdict::missing_copies(r, g)?.is_some()
            {
                not_offsite.push(name.clone());
            }
        }
        Ok((latest, not_offsite))
    })
    .await;
    let (latest, not_offsite) = match found {
        Ok(l) => l,
        Err(e) => {
            return super::respond::error(
                StatusCode::SERVICE_UNAVAILABLE,
                super::internal_error(&e),
            );
        }
    };
    let now = state.clock.now();
    let stale_after = chrono::Duration::from_std(state.runner.config().web.stale_after)
        .unwrap_or(chrono::Duration::hours(26));
    let stale: Vec<String> = latest
        .iter()
        .filter(|(_, good, _)| {
            good.as_ref()
                .is_none_or(|g| now - g.finished_at.unwrap_or(g.started_at) > stale_after)
        })
        .map(|(name, _, _)| name.clone())
        .collect();
    let unverified: Vec<String> = latest
        .iter()
        .filter(|(_, good, _)| {
            good.as_ref()
                .is_some_and(|g| g.verify_status.as_deref() == Some("failed"))
        })
        .map(|(name, _, _)| name.clone())
        .collect();
    let alive = state.status.alive();
    let healthy = stale.is_empty() && unverified.is_empty() && not_offsite.is_empty() && alive;
    if healthy {
        return Json(Health {
            status: "ok",
            counts: None,
            stale,
            unverified,
            not_offsite,
            scheduler: None,
        })
        .into_response();
    }
    let counts = Counts {
        stale: stale.len(),
        unverified: unverified.len(),
        not_offsite: not_offsite.len(),
    };
    // A session or token that cannot be checked shows no names: the counts still answer.
    let details = state.runner.config().web.healthz_details
        || matches!(super::auth::identify(&state, &headers).await, Ok(Some(_)));
    let names = |list: Vec<String>| if details { list } else { Vec::new() };
    let body = Health {
        status: "unhealthy",
        counts: Some(counts),
        stale: names(stale),
        unverified: names(unverified),
        not_offsite: names(not_offsite),
        scheduler: (!alive).then_some("stopped"),
    };
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

pub async fn metrics_get(state: State, Extension(identity): Extension<Identity>) -> Response {
    // The metrics name every database: a login limited to some may not read them.
    if !identity.grant().databases.is_all() {
        return super::respond::error(
            StatusCode::FORBIDDEN,
            "forbidden: the metrics cover every database; scrape them with a token over all databases",
        );
    }
    render_metrics(&state.runner, &state.facts, state.clock.now()).await
}

/// The metrics page, computed from the catalog at each scrape.
pub async fn render_metrics(
    runner: &Arc<dyn View>,
    facts: &Arc<FactsCache>,
    now: chrono::DateTime<chrono::Utc>,
) -> Response {
    let facts = Arc::clone(facts);
    let data = super::read(runner, move |r| {
        let judged = dbkeep_core::verdict::all(r, &facts, now)?;
        let verified = {
            let names: Vec<String> = r
                .config()
                .databases
                .iter()
                .map(|d| d.name.clone())
                .collect();
            // The newest verification is in the kept facts; the newest that passed, by name.
            let mut passed: std::collections::HashMap<String, dbkeep_model::catalog::Verification> =
                r.catalog()
                    .last_verifications(&names, true)?
                    .into_iter()
                    .collect();
            names
                .iter()
                .zip(judged.iter())
                .map(|(n, j)| (j.facts.last_verification.clone(), passed.remove(n)))
                .collect::<Vec<_>>()
        };
        Ok((
            latest_of(r, judged.iter().map(|j| &*j.facts)),
            r.catalog().status_counts()?,
            judged,
            verified,
            r.notifier().failed()?,
            (r.copies().failure_counts()?, r.copies().last_uploads()?),
            (
                dbkeep_model::instances::listed(r.catalog(), r.config().service.lease_timeout)?,
                r.space(now)?,
                dbkeep_core::discovery::server_states(r)?,
                // From the catalog only: a scrape never waits on a database server.
                dbkeep_core::pitr::states(r, now, false)?,
            ),
        ))
    })
    .await;
    let (
        latest,
        counts,
        judged,
        verified,
        undelivered,
        (upload_failures, uploads),
        (instances, space, servers, archives),
    ) = match data {
        Ok(d) => d,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{}\n", super::internal_error(&e)),
            )
                .into_response();
        }
    };
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    };
    let label = |db: &str| {
        format!(
            "database=\"{}\"",
            db.replace('\\', "\\\\").replace('"', "\\\"")
        )
    };
    let good = |f: &dyn Fn(&BackupRecord) -> Option<String>| -> Vec<(String, String)> {
        latest
            .iter()
            .filter_map(|(db, g, _)| g.as_ref().and_then(f).map(|v| (label(db), v)))
            .collect()
    };
    // Every configured database from the first scrape: 0 for "never", so that
    // `time() - dbkeep_backup_last_success_timestamp_seconds > …` fires for it too.
    family(
        "dbkeep_backup_last_success_timestamp_seconds",
        "gauge",
        "When the newest successful backup finished, as a Unix time; 0 if none ever did.",
        latest
            .iter()
            .map(|(db, g, _)| {
                let t = g
                    .as_ref()
                    .map_or(0, |g| g.finished_at.unwrap_or(g.started_at).timestamp());
                (label(db), t.to_string())
            })
            .collect(),
    );
    family(
        "dbkeep_database_status",
        "gauge",
        "1 for the database's verdict (failing, unprotected, stale, not_offsite, protected, gone), 0 for the others.",
        latest
            .iter()
            .zip(judged.iter())
            .flat_map(|((db, _, _), judged)| {
                let verdict = &judged.verdict;
                dbkeep_core::verdict::State::ALL.iter().map(move |s| {
                    (
                        format!("{},status=\"{s}\"", label(db)),
                        u8::from(*s == verdict.state).to_string(),
                    )
                })
            })
            .collect(),
    );
    family(
        "dbkeep_verify_last_success_timestamp_seconds",
        "gauge",
        "When a backup of the database last passed a verification, as a Unix time; 0 if never.",
        latest
            .iter()
            .zip(&verified)
            .map(|((db, _, _), (_, ok))| {
                let t = ok.as_ref().map_or(0, |v| v.finished_at.timestamp());
                (label(db), t.to_string())
            })
            .collect(),
    );
    family(
        "dbkeep_verify_last_status",
        "gauge",
        "1 when the database's latest verification passed, 0 when it failed or none ran yet.",
        latest
            .iter()
            .zip(&verified)
            .map(|((db, _, _), (last, _))| {
                (
                    label(db),
                    u8::from(last.as_ref().is_some_and(|v| v.ok)).to_string(),
                )
            })
            .collect(),
    );
    let quoted = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    family(
        "dbkeep_server_up",
        "gauge",
        "1 when the [[servers]] entry answered its last discovery, 0 when it did not (or was not asked yet).",
        servers
            .iter()
            .map(|s| {
                (
                    format!("server=\"{}\"", quoted(&s.server)),
                    u8::from(s.checked_at.is_some() && s.error.is_none()).to_string(),
                )
            })
            .collect(),
    );
    family(
        "dbkeep_server_databases",
        "gauge",
        "The databases of a [[servers]] entry, by state (known, gone, unreadable).",
        servers
            .iter()
            .flat_map(|s| {
                [
                    ("known", s.known),
                    ("gone", s.gone),
                    ("unreadable", s.unreadable),
                ]
                .map(|(state, n)| {
                    (
                        format!("server=\"{}\",state=\"{state}\"", quoted(&s.server)),
                        n.to_string(),
                    )
                })
            })
            .collect(),
    );
    family(
        "dbkeep_offsite_upload_failures_total",
        "counter",
        "Off-site copies that failed after every try, per destination.",
        upload_failures
            .iter()
            .map(|(store, n)| (format!("destination=\"{}\"", quoted(store)), n.to_string()))
            .collect(),
    );
    family(
        "dbkeep_offsite_last_success_timestamp_seconds",
        "gauge",
        "When the database's newest copy arrived at the destination (Unix time).",
        uploads
            .iter()
            .map(|(db, store, at)| {
                (
                    format!("{},destination=\"{}\"", label(db), quoted(store)),
                    at.timestamp().to_string(),
                )
            })
            .collect(),
    );
    family(
        "dbkeep_notifications_failed_total",
        "counter",
        "Notifications (webhooks, pings) not delivered after every try, per channel.",
        undelivered
            .iter()
            .map(|(channel, n)| {
                (
                    format!(
                        "channel=\"{}\"",
                        channel.replace('\\', "\\\\").replace('"', "\\\"")
                    ),
                    n.to_string(),
                )
            })
            .collect(),
    );
    family(
        "dbkeep_restore_duration_seconds",
        "gauge",
        "How long the latest passed restore-level verification took to restore: the time to recover.",
        latest
            .iter()
            .zip(&verified)
            .filter_map(|((db, _, _), (_, ok))| {
                let ms = ok.as_ref()?.restore_ms?;
                Some((label(db), format!("{:.3}", ms as f64 / 1000.0)))
            })
            .collect(),
    );
    family(
        "dbkeep_backup_last_size_bytes",
        "gauge",
        "Size of the newest successful backup file.",
        good(&|g| g.size_bytes.map(|s| s.to_string())),
    );
    family(
        "dbkeep_backup_last_duration_seconds",
        "gauge",
        "How long the newest successful backup took.",
        good(&|g| g.duration_ms.map(|d| format!("{:.3}", d as f64 / 1000.0))),
    );
    family(
        "dbkeep_backups_total",
        "counter",
        "Backups recorded, by database and status.",
        counts
            .iter()
            .map(|(db, status, n)| (format!("{},status=\"{status}\"", label(db)), n.to_string()))
            .collect(),
    );
    family(
        "dbkeep_backup_in_progress",
        "gauge",
        "1 while a backup of the database is running.",
        latest
            .iter()
            .map(|(db, _, running)| (label(db), u8::from(*running).to_string()))
            .collect(),
    );
    space_metrics(&mut out, &space);
    pitr_metrics(&mut out, &archives, now);
    let _ = writeln!(
        out,
        "# HELP dbkeep_instances_alive Instances sharing the catalog whose heartbeat is recent.\n\
         # TYPE dbkeep_instances_alive gauge\ndbkeep_instances_alive {}",
        instances.iter().filter(|i| i.alive).count()
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// The point-in-time series of each server that archives WAL: when its newest WAL was
/// archived, and how many seconds of its past it can be recovered to (0 while nothing).
fn pitr_metrics(
    out: &mut String,
    archives: &[dbkeep_core::pitr::ArchiveState],
    now: chrono::DateTime<chrono::Utc>,
) {
    if archives.is_empty() {
        return;
    }
    let quoted = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    let _ = writeln!(
        out,
        "# HELP dbkeep_wal_last_archived_timestamp_seconds When the server's newest WAL reached its archive (Unix time; absent before the first).\n\
         # TYPE dbkeep_wal_last_archived_timestamp_seconds gauge"
    );
    for a in archives {
        if let Some(t) = a.last_archived {
            let _ = writeln!(
                out,
                "dbkeep_wal_last_archived_timestamp_seconds{{server=\"{}\"}} {:.3}",
                quoted(&a.server),
                t.timestamp_millis() as f64 / 1000.0
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP dbkeep_pitr_recoverable_seconds How far back the server can be recovered to any moment: from its oldest stored base backup to its newest archived WAL.\n\
         # TYPE dbkeep_pitr_recoverable_seconds gauge"
    );
    for a in archives {
        let seconds = a
            .recoverable
            .map_or(0, |(from, to)| (to.min(now) - from).num_seconds().max(0));
        let _ = writeln!(
            out,
            "dbkeep_pitr_recoverable_seconds{{server=\"{}\"}} {seconds}",
            quoted(&a.server)
        );
    }
}

/// The space series: each configured database's backups and bytes at each destination (every
/// one of them from the first scrape, 0 while it holds nothing), and the local folder's free
/// space when it can be read.
fn space_metrics(out: &mut String, space: &dbkeep_core::space::Space) {
    let quoted = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    let series = |out: &mut String,
                  name: &str,
                  help: &str,
                  value: &dyn Fn(&dbkeep_core::space::Usage) -> u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for db in &space.databases {
            for u in &db.destinations {
                let _ = writeln!(
                    out,
                    "{name}{{database=\"{}\",destination=\"{}\"}} {}",
                    quoted(&db.database),
                    quoted(&u.destination),
                    value(u)
                );
            }
        }
    };
    series(
        out,
        "dbkeep_storage_bytes",
        "Bytes of the database's backups held at the destination (local: this instance's backup folder), as the catalog records them.",
        &|u| u.bytes,
    );
    series(
        out,
        "dbkeep_storage_backups",
        "Backups of the database held at the destination (local: this instance's backup folder).",
        &|u| u.backups,
    );
    if let Some(free) = space.disk.free_bytes {
        let _ = writeln!(
            out,
            "# HELP dbkeep_local_free_bytes Bytes free on the disk of this instance's backup folder.\n\
             # TYPE dbkeep_local_free_bytes gauge\ndbkeep_local_free_bytes {free}"
        );
    }
}
