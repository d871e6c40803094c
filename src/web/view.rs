//! What the pages show: typed templates (checked at compile time) and the small formatting
//! helpers they need (human sizes, relative times, the run strip and the SVG chart).

use askama::Template;
use askama_web::WebTemplate;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::catalog::{BackupRecord, Status};

/// A byte count in binary units.
pub fn size(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "—".to_string(), |b| indicatif::HumanBytes(b).to_string())
}

/// A duration in milliseconds, short.
pub fn duration(ms: Option<u64>) -> String {
    match ms {
        None => "—".to_string(),
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// An instant in the service's zone, to the second.
pub fn local(t: &DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// How long ago (or from now) `t` is, in words: "3 hours ago", "in 5 minutes".
pub fn relative(t: &DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - *t).num_seconds();
    let (n, future) = (secs.unsigned_abs(), secs < 0);
    let (value, unit) = match n {
        0..=59 => {
            return if future {
                "in a moment".into()
            } else {
                "just now".into()
            };
        }
        60..=3599 => (n / 60, "minute"),
        3600..=86_399 => (n / 3600, "hour"),
        _ => (n / 86_400, "day"),
    };
    let plural = if value == 1 { "" } else { "s" };
    if future {
        format!("in {value} {unit}{plural}")
    } else {
        format!("{value} {unit}{plural} ago")
    }
}

/// The word and colour class of a backup's state: pruned counts as its own state here.
pub fn state(r: &BackupRecord) -> (&'static str, &'static str) {
    match (r.status, r.pruned_at.is_some()) {
        (Status::Success, true) => ("pruned", "grey"),
        (Status::Success, false) => ("success", "green"),
        (Status::Failed, _) => ("failed", "red"),
        (Status::InProgress, _) => ("in progress", "orange"),
    }
}

/// How a kind of database is named on the pages.
pub fn kind_label(kind: crate::catalog::Kind) -> &'static str {
    match kind {
        crate::catalog::Kind::Sqlite => "SQLite",
        crate::catalog::Kind::Postgres => "PostgreSQL",
    }
}

/// The fields every page's frame needs.
pub struct Frame {
    pub base: String,
    /// The backups page: `/`, or the mount point itself when nested (`/admin/backups`).
    pub home: String,
    pub user: String,
    pub csrf_token: String,
    pub nav: &'static str,
}

/// One row of the backups table.
pub struct Row {
    pub id: i64,
    pub state: &'static str,
    pub colour: &'static str,
    pub database: String,
    pub kind: String,
    pub file_name: String,
    pub size: String,
    pub duration: String,
    pub started: String,
    pub ago: String,
    pub trigger: String,
    pub error: Option<String>,
    pub downloadable: bool,
}

impl Row {
    pub fn new(r: &BackupRecord, tz: Tz, now: DateTime<Utc>) -> Row {
        let (state, colour) = state(r);
        Row {
            id: r.id,
            state,
            colour,
            database: r.database.clone(),
            kind: kind_label(r.kind).to_string(),
            file_name: r.file_name.clone().unwrap_or_else(|| "—".into()),
            size: size(r.size_bytes),
            duration: duration(r.duration_ms),
            started: local(&r.started_at, tz),
            ago: relative(&r.started_at, now),
            trigger: r.trigger.to_string(),
            error: r.error.clone(),
            downloadable: r.status == Status::Success && r.pruned_at.is_none(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "backups.html")]
pub struct Backups {
    pub frame: Frame,
    pub rows: Vec<Row>,
    pub databases: Vec<String>,
    pub database: String,
    pub status: String,
    pub older: Option<String>,
    pub refresh: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "backup.html")]
pub struct Backup {
    pub frame: Frame,
    pub row: Row,
    pub path: String,
    pub sha256: String,
    pub compression: String,
    pub finished: String,
    pub pruned: String,
}

/// One database on the dashboard.
pub struct Card {
    pub name: String,
    pub kind: String,
    pub verdict: &'static str,
    pub colour: &'static str,
    pub why: String,
    pub last_success: String,
    pub last_success_ago: String,
    pub next_run: String,
    pub success_rate: String,
    pub strip: Vec<(i64, &'static str, &'static str)>,
    pub chart: String,
    pub folder: String,
    pub running: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "databases.html")]
pub struct Databases {
    pub frame: Frame,
    pub cards: Vec<Card>,
    pub notice: Option<String>,
}

/// One schedule with its recent fires.
pub struct ScheduleView {
    pub database: String,
    pub expr: String,
    pub next: String,
    pub fires: Vec<(String, String, &'static str, Option<i64>, String)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "schedules.html")]
pub struct Schedules {
    pub frame: Frame,
    pub timezone: String,
    pub schedules: Vec<ScheduleView>,
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct Login {
    pub base: String,
    pub csrf_token: String,
    pub next: String,
    pub error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub base: String,
    pub home: String,
    pub message: String,
}

/// A small SVG chart of the sizes (line) and durations (bars) of `records`, oldest left.
pub fn chart(records: &[&BackupRecord]) -> String {
    let good: Vec<_> = records
        .iter()
        .rev()
        .filter(|r| r.status == Status::Success)
        .collect();
    if good.len() < 2 {
        return String::new();
    }
    let (w, h, pad) = (300.0, 60.0, 4.0);
    let max_size = good
        .iter()
        .filter_map(|r| r.size_bytes)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let max_ms = good
        .iter()
        .filter_map(|r| r.duration_ms)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let step = (w - 2.0 * pad) / (good.len() - 1) as f64;
    let mut bars = String::new();
    let mut points = Vec::new();
    for (i, r) in good.iter().enumerate() {
        let x = pad + step * i as f64;
        let bh = (h - 2.0 * pad) * r.duration_ms.unwrap_or(0) as f64 / max_ms;
        bars.push_str(&format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"3\" height=\"{bh:.1}\" class=\"bar\"><title>{}</title></rect>",
            x - 1.5,
            h - pad - bh,
            duration(r.duration_ms)
        ));
        let y = h - pad - (h - 2.0 * pad) * r.size_bytes.unwrap_or(0) as f64 / max_size;
        points.push(format!("{x:.1},{y:.1}"));
    }
    format!(
        "<svg viewBox=\"0 0 {w} {h}\" class=\"chart\" role=\"img\" aria-label=\"backup size (line) and duration (bars), oldest on the left\">{bars}<polyline points=\"{}\" class=\"line\"/></svg>",
        points.join(" ")
    )
}
