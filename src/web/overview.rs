//! The home page: is every database protected? A summary line, then one card per database,
//! most urgent first, each saying why it stands where it does.

use std::sync::Arc;

use axum::Extension;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::auth::Identity;
use super::pages::{error_page, frame};
use super::view::{self, Card, Square};
use super::{State, WebState, blocking};
use crate::catalog::Status;
use crate::verdict::{self, State as Verdict};

pub async fn overview_get(state: State, Extension(identity): Extension<Identity>) -> Response {
    overview_page(&state, &identity, None).await
}

/// The overview, with `notice` shown above the cards (e.g. why Back up now did nothing).
pub async fn overview_page(
    state: &Arc<WebState>,
    identity: &Identity,
    notice: Option<String>,
) -> Response {
    let now = state.clock.now();
    let judged = match blocking(state, move |r| verdict::all(r, now)).await {
        Ok(j) => j,
        Err(e) => return error_page(state, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let config = state.runner.config();
    let tz = config.service.timezone;
    let upcoming = state.status.upcoming();
    let mut cards: Vec<(Verdict, Card)> = config
        .databases
        .iter()
        .zip(&judged)
        .map(|(db, judged)| {
            let (verdict, rows) = (&judged.verdict, &judged.facts.recent);
            let (verified, verified_colour) = match &judged.facts.last_verification {
                None => (
                    "never (a restore drill runs on verify_schedule)".to_string(),
                    "grey",
                ),
                Some(v) => {
                    let how = if v.ok { "passed" } else { "FAILED" };
                    let took = v
                        .restore_ms
                        .map(|ms| format!(" · restores in ~{}", view::duration(Some(ms))))
                        .unwrap_or_default();
                    (
                        format!(
                            "{} ({}): {} {how}, backup #{}{took}",
                            view::local(&v.finished_at, tz),
                            view::relative(&v.finished_at, now),
                            v.level,
                            v.backup_id
                        ),
                        if v.ok { "green" } else { "red" },
                    )
                }
            };
            let done: Vec<_> = rows
                .iter()
                .filter(|r| r.status != Status::InProgress)
                .collect();
            let ok = done.iter().filter(|r| r.status == Status::Success).count();
            let next = upcoming
                .iter()
                .filter(|u| u.database == db.name)
                .filter_map(|u| u.next)
                .min();
            let card = Card {
                name: db.name.clone(),
                kind: view::kind_label(db.target.kind()).to_string(),
                state: verdict.state.label(),
                colour: verdict.state.colour(),
                icon: verdict.state.icon(),
                reason: verdict.reason.clone(),
                last_success: verdict
                    .last_good
                    .map_or_else(|| "never".into(), |t| view::local(&t, tz)),
                last_success_ago: verdict
                    .last_good
                    .map(|t| view::relative(&t, now))
                    .unwrap_or_default(),
                next_run: next.map_or_else(|| "not scheduled".into(), |t| view::local(&t, tz)),
                next_run_in: next.map(|t| view::relative(&t, now)).unwrap_or_default(),
                verified,
                verified_colour,
                success_rate: if done.is_empty() {
                    "no runs yet".into()
                } else {
                    format!(
                        "{ok} of the last {} ({}%)",
                        done.len(),
                        ok * 100 / done.len()
                    )
                },
                strip: rows
                    .iter()
                    .rev()
                    .map(|r| {
                        let (word, colour) = view::state(r);
                        Square {
                            id: r.id,
                            colour,
                            title: format!("#{} {word}, {}", r.id, view::local(&r.started_at, tz)),
                        }
                    })
                    .collect(),
                chart: view::Chart::of(rows, tz),
                folder: config.database_dir(&db.name).display().to_string(),
                running: rows.first().is_some_and(|r| r.status == Status::InProgress),
            };
            (verdict.state, card)
        })
        .collect();
    // Most urgent first; configuration order within a state.
    cards.sort_by_key(|(state, _)| *state);
    let summary = summary(&cards.iter().map(|(s, _)| *s).collect::<Vec<_>>());
    let oldest = judged
        .iter()
        .zip(&config.databases)
        .filter_map(|(j, db)| j.verdict.last_good.map(|t| (t, &db.name)))
        .min()
        .map(|(t, name)| {
            format!(
                "oldest last good backup: {} ({name})",
                view::relative(&t, now)
            )
        });
    view::Overview {
        frame: frame(state, identity, "overview"),
        refresh: cards.iter().any(|(_, c)| c.running),
        summary,
        oldest,
        cards: cards.into_iter().map(|(_, c)| c).collect(),
        notice,
    }
    .into_response()
}

/// "3 databases · 1 failing · 2 protected": every state that occurs, most urgent first.
fn summary(states: &[Verdict]) -> String {
    let total = match states.len() {
        1 => "1 database".to_string(),
        n => format!("{n} databases"),
    };
    let mut parts = vec![total];
    for s in Verdict::ALL {
        let n = states.iter().filter(|x| **x == s).count();
        if n > 0 {
            parts.push(format!("{n} {s}"));
        }
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_each_state_most_urgent_first() {
        assert_eq!(
            summary(&[
                Verdict::Protected,
                Verdict::Failing,
                Verdict::Protected,
                Verdict::Stale
            ]),
            "4 databases · 1 failing · 1 stale · 2 protected"
        );
        assert_eq!(summary(&[Verdict::Protected]), "1 database · 1 protected");
        assert_eq!(summary(&[]), "0 databases");
    }
}
