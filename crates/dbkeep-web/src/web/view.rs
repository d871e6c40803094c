//! What the pages show: typed templates (checked at compile time) and the small formatting
//! helpers they need (human sizes, relative times, the run strip and the SVG chart).

use askama::Template;
use askama_web::WebTemplate;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use dbkeep_model::catalog::{BackupRecord, Status};

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

/// The word and colour class of a backup's state: pruned counts as its own state here, and
/// a backup whose local file retention deleted while off-site copies remain is "off-site only".
pub fn state(r: &BackupRecord) -> (&'static str, &'static str) {
    match (r.status, r.pruned_at.is_some()) {
        (Status::Success, true) if r.is_stored() => ("off-site only", "green"),
        (Status::Success, true) => ("pruned", "grey"),
        (Status::Success, false) => ("success", "green"),
        (Status::Failed, _) => ("failed", "red"),
        (Status::InProgress, _) => ("in progress", "orange"),
    }
}

/// Where a backup's bytes still are: `local` while retention has not deleted its local file,
/// then each off-site destination that holds a checked copy. Empty for a run that stored
/// nothing, or for a backup gone everywhere.
pub fn locations(r: &BackupRecord) -> Vec<String> {
    if r.status != Status::Success {
        return Vec::new();
    }
    let local = r.pruned_at.is_none().then(|| "local".to_string());
    local
        .into_iter()
        .chain(r.offsite_holders().into_iter().map(str::to_string))
        .collect()
}

/// How a kind of database is named on the pages.
pub fn kind_label(kind: dbkeep_model::catalog::Kind) -> &'static str {
    match kind {
        dbkeep_model::catalog::Kind::Sqlite => "SQLite",
        dbkeep_model::catalog::Kind::Postgres => "PostgreSQL",
        dbkeep_model::catalog::Kind::Mysql => "MySQL",
        dbkeep_model::catalog::Kind::PostgresBase => "PostgreSQL base backup",
    }
}

/// The fields every page's frame needs.
pub struct Frame {
    pub base: String,
    /// The overview (home) page: `/`, or the mount point itself when nested (`/admin/backups`).
    pub home: String,
    pub user: String,
    pub csrf_token: String,
    pub nav: &'static str,
    /// Whether the caller is an admin (pin, unpin, prune, the users and audit pages): the
    /// pages show those only then.
    pub admin: bool,
    /// Whether the caller is at least an operator (back up now, verify, download).
    pub operator: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "users.html")]
pub struct Users {
    pub frame: Frame,
    pub timezone: String,
    pub users: Vec<UserView>,
    pub tokens: Vec<TokenView>,
}

/// One user on the users page.
pub struct UserView {
    pub name: String,
    /// Whether they come from single sign-on (else they log in with a password).
    pub single_sign_on: bool,
    pub role: &'static str,
    pub databases: String,
    pub added: String,
    /// How many sessions they have now.
    pub sessions: usize,
    /// When the newest of them began (empty when none).
    pub newest_session: String,
}

/// One API token on the users page.
pub struct TokenView {
    pub name: String,
    pub role: &'static str,
    pub databases: String,
    pub added: String,
    pub expires: String,
    pub used: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "account.html")]
pub struct Account {
    pub frame: Frame,
    /// A browser session's user (an API token has no account).
    pub is_user: bool,
    pub grant: String,
    /// Whether the user's second factor is on.
    pub enabled: bool,
    /// Whether `require_2fa` covers the user.
    pub required: bool,
    pub codes_left: u64,
    /// While enrolling: the secret and its QR code.
    pub enrolment: Option<dbkeep_core::twofactor::Enrolment>,
    /// Just enrolled: the recovery codes, shown this once.
    pub recovery_codes: Option<Vec<String>>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
pub struct Audit {
    pub frame: Frame,
    pub timezone: String,
    pub actor: String,
    /// Every action, and whether it is the one filtered on.
    pub actions: Vec<(&'static str, bool)>,
    pub rows: Vec<AuditView>,
    /// The next page's address, when there are older rows.
    pub older: Option<String>,
}

/// One row of the audit page.
pub struct AuditView {
    pub time: String,
    pub actor: String,
    pub action: &'static str,
    pub target: String,
    pub outcome: &'static str,
    pub colour: &'static str,
    pub detail: String,
    pub source: String,
    pub user_agent: String,
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
    /// How its latest verification ended, as a word and a colour.
    pub verified: Option<(&'static str, &'static str)>,
    /// Less than half the size of its database's previous successful backup.
    pub suspicious: bool,
    /// Pinned: no prune deletes it anywhere.
    pub pinned: bool,
    /// Why it is pinned (empty without a note, or when it is not pinned).
    pub pin_note: String,
    /// Where it is kept ([`locations`]).
    pub locations: Vec<String>,
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
            downloadable: r.is_stored(),
            verified: match r.verify_status.as_deref() {
                Some("ok") => Some(("verified", "green")),
                Some(_) => Some(("verify failed", "red")),
                None => None,
            },
            suspicious: false,
            pinned: r.pinned,
            pin_note: r.pin_note.clone().filter(|_| r.pinned).unwrap_or_default(),
            locations: locations(r),
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
    /// What the filters asked for, when they matched nothing ("database app, status failed").
    pub unmatched: Option<String>,
    /// The configured database the list is filtered to, for a link to its retention page.
    pub retention: Option<String>,
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
    /// The run's log, one entry per line.
    pub log: Vec<String>,
    /// Its verifications, newest first.
    pub verifications: Vec<VerificationView>,
    /// The command that restores it where it came from.
    pub restore_command: String,
    /// Its off-site copies.
    pub copies: Vec<CopyView>,
    /// The instance that made it (and whether that is this one).
    pub instance: String,
    /// Where its bytes are, when its local file is not on this instance's disk.
    pub whereabouts: Option<String>,
    /// A successful backup: it has places it is kept at, and may be pinned.
    pub success: bool,
    /// The longest pin note accepted, in characters.
    pub note_max: usize,
}

#[derive(Template, WebTemplate)]
#[template(path = "retention.html")]
pub struct Retention {
    pub frame: Frame,
    pub database: String,
    pub timezone: String,
    /// The day previewed, as the date field gives it back (empty for now).
    pub at: String,
    /// A preview of another day: nothing can be pruned from it.
    pub preview: bool,
    /// What the last prune from the page did.
    pub notice: Option<String>,
    /// The calendar's colour classes and their words.
    pub legend: Vec<(&'static str, &'static str)>,
    /// Each destination that keeps the database's backups, local first.
    pub destinations: Vec<DestinationView>,
    /// Every decision, up to a limit, each destination's newest first.
    pub rows: Vec<DecisionRow>,
    /// How many decisions there are, and how many the table leaves out.
    pub total: usize,
    pub left_out: usize,
    /// The deletions Confirm prune lets go, when a held prune can be confirmed.
    pub confirm: Option<usize>,
    /// Whether Prune now would delete something.
    pub prunable: bool,
}

/// One destination on the retention page.
pub struct DestinationView {
    /// `local`, or an off-site destination's name.
    pub name: String,
    /// Its policy, in `dbkeep.toml`'s keys.
    pub policy: String,
    /// "22 kept · 1 pinned · 378 held".
    pub counts: String,
    /// Why its prune waits, if it does.
    pub held: Option<String>,
    /// What happens to each day's backups there; `None` when it holds none.
    pub calendar: Option<super::calendar::Calendar>,
}

/// One decision in the retention page's table.
pub struct DecisionRow {
    pub id: i64,
    pub destination: String,
    pub file_name: String,
    pub started: String,
    /// "keep", "keep (pinned)", "will be pruned", "held".
    pub action: &'static str,
    /// Its colour class, as the calendar's.
    pub class: &'static str,
    /// The rules that keep it, or why none does.
    pub reasons: String,
    pub pin_note: String,
}

/// One off-site copy on a backup's page.
pub struct CopyView {
    pub store: String,
    pub state: &'static str,
    pub colour: &'static str,
    pub detail: String,
}

/// One verification on a backup's page.
pub struct VerificationView {
    pub when: String,
    pub level: String,
    pub result: &'static str,
    pub colour: &'static str,
    pub message: String,
    pub restore: String,
}

/// One database on the overview.
pub struct Card {
    pub name: String,
    pub kind: String,
    /// The verdict's word, colour and symbol.
    pub state: &'static str,
    pub colour: &'static str,
    pub icon: &'static str,
    /// Why, in words.
    pub reason: String,
    pub last_success: String,
    pub last_success_ago: String,
    pub next_run: String,
    pub next_run_in: String,
    pub success_rate: String,
    /// The latest verification: when, how deeply, how it ended, how long the restore took.
    pub verified: String,
    pub verified_colour: &'static str,
    /// Recent runs, oldest first.
    pub strip: Vec<Square>,
    pub chart: Option<Chart>,
    pub folder: String,
    pub running: bool,
}

/// One run in a card's strip: a link to it, with its state and time as a tooltip.
pub struct Square {
    pub id: i64,
    pub colour: &'static str,
    pub title: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "overview.html")]
pub struct Overview {
    pub frame: Frame,
    /// "3 databases · 1 failing · 2 protected".
    pub summary: String,
    pub oldest: Option<String>,
    /// A card per database, when there are few.
    pub cards: Vec<Card>,
    /// A table, a page at a time, when there are many.
    pub table: Option<DatabaseTable>,
    pub notice: Option<String>,
    pub refresh: bool,
    /// The Space box (`space.html`), when the report could be read.
    pub space: Option<super::space::SpaceBox>,
    /// The `[[servers]]` entries whose databases are discovered.
    pub servers: Vec<ServerBox>,
    /// The servers whose WAL is archived, for point-in-time recovery.
    pub pitr: Vec<PitrBox>,
}

/// One server's point-in-time recovery on the overview.
pub struct PitrBox {
    pub name: String,
    /// `archiving`, `no recent WAL` or `nothing yet`, and its colour.
    pub state: &'static str,
    pub colour: &'static str,
    /// "from 2026-12-07 01:00:12 UTC (2 days ago) to 2026-12-07 23:59:40 UTC (20 s ago)".
    pub recoverable: String,
    /// The age of the newest archived WAL, in seconds, and in words.
    pub rpo_seconds: Option<u64>,
    pub rpo: String,
    /// Files still owed to off-site destinations.
    pub queued: usize,
}

/// One `[[servers]]` entry on the overview.
pub struct ServerBox {
    pub name: String,
    pub url: String,
    /// `ok`, `failing` or `not asked yet`, and its colour.
    pub state: &'static str,
    pub colour: &'static str,
    /// Why, in words.
    pub why: String,
    /// "30 known · 1 gone · 0 unreadable".
    pub counts: String,
}

/// The overview's table of databases, for a configuration with many.
pub struct DatabaseTable {
    pub rows: Vec<DatabaseRow>,
    /// "1–100 of 1000".
    pub showing: String,
    pub previous: Option<String>,
    pub next: Option<String>,
    pub filters: Vec<StateFilter>,
}

/// One database in the overview's table: its verdict and times, in one line.
pub struct DatabaseRow {
    pub name: String,
    pub kind: String,
    pub state: &'static str,
    pub colour: &'static str,
    pub icon: &'static str,
    pub reason: String,
    /// "3 hours ago", or "never".
    pub last_success: String,
    /// The same instant in full, as a tooltip.
    pub last_success_at: String,
    pub next_run: String,
    pub next_run_at: String,
    /// "passed 2 hours ago", "FAILED …", "never".
    pub verified: String,
    /// The verification in full, as a tooltip.
    pub verified_at: String,
    pub verified_colour: &'static str,
    pub running: bool,
}

/// A link that lists only the databases in one state.
pub struct StateFilter {
    /// "3 failing".
    pub label: String,
    pub href: String,
    pub colour: &'static str,
    pub current: bool,
}

/// One schedule with its recent fires.
pub struct ScheduleView {
    pub database: String,
    pub expr: String,
    pub next: String,
    pub fires: Vec<FireView>,
}

/// One fire of a schedule: when it was planned and what became of its backup.
pub struct FireView {
    pub planned: String,
    /// `success`, `failed`, `running`, `skipped`, `not started`, `missed`.
    pub result: &'static str,
    pub colour: &'static str,
    pub backup: Option<i64>,
    pub detail: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "schedules.html")]
pub struct Schedules {
    pub frame: Frame,
    pub timezone: String,
    pub schedules: Vec<ScheduleView>,
}

#[derive(Template, WebTemplate)]
#[template(path = "instances.html")]
pub struct Instances {
    pub frame: Frame,
    pub timezone: String,
    pub lease_timeout: String,
    pub instances: Vec<InstanceView>,
}

/// One row of the instances table.
pub struct InstanceView {
    pub name: String,
    /// `alive` or `gone`.
    pub state: &'static str,
    pub colour: &'static str,
    pub host: String,
    pub pid: u32,
    pub version: String,
    pub started: String,
    pub heartbeat: String,
    /// The databases it runs, comma-separated.
    pub running: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct Login {
    pub base: String,
    pub csrf_token: String,
    pub next: String,
    pub error: Option<String>,
    /// The second step: a code from an authenticator app, or a recovery code.
    pub second_factor: bool,
    /// The single sign-on link, when `[auth.oidc]` is set.
    pub single_sign_on: Option<String>,
    /// Whether the password form is shown (`local_login`, or for the break-glass user).
    pub local_login: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub frame: Frame,
    pub title: String,
    pub message: String,
}

/// Sizes and durations of a database's recent successful backups: an SVG with labelled axes,
/// units and a legend, and the same numbers as a table for screen readers.
pub struct Chart {
    pub svg: String,
    /// Newest first.
    pub rows: Vec<ChartRow>,
}

/// One backup in a chart's table.
pub struct ChartRow {
    pub id: i64,
    pub when: String,
    pub size: String,
    pub duration: String,
}

impl Chart {
    /// The chart of the successful runs among `records` (newest first), or `None` with fewer
    /// than two.
    pub fn of(records: &[BackupRecord], tz: Tz) -> Option<Chart> {
        let good: Vec<&BackupRecord> = records
            .iter()
            .filter(|r| r.status == Status::Success)
            .collect();
        if good.len() < 2 {
            return None;
        }
        let rows = good
            .iter()
            .map(|r| ChartRow {
                id: r.id,
                when: local(&r.started_at, tz),
                size: size(r.size_bytes),
                duration: duration(r.duration_ms),
            })
            .collect();
        Some(Chart {
            svg: chart_svg(&good.iter().rev().copied().collect::<Vec<_>>()),
            rows,
        })
    }
}

/// The SVG of [`Chart`]: `good` oldest first; size as a line (left axis), duration as bars
/// (right axis).
fn chart_svg(good: &[&BackupRecord]) -> String {
    let (w, h) = (360.0, 150.0);
    let (left, right, top, bottom) = (62.0, 300.0, 22.0, 118.0);
    let max_size = good
        .iter()
        .filter_map(|r| r.size_bytes)
        .max()
        .unwrap_or(1)
        .max(1);
    let max_ms = good
        .iter()
        .filter_map(|r| r.duration_ms)
        .max()
        .unwrap_or(1)
        .max(1);
    let step = (right - left) / (good.len().max(2) - 1) as f64;
    let y_of = |fraction: f64| bottom - (bottom - top) * fraction;
    let mut bars = String::new();
    let mut points = Vec::new();
    for (i, r) in good.iter().enumerate() {
        let x = left + step * i as f64;
        let bar = y_of(r.duration_ms.unwrap_or(0) as f64 / max_ms as f64);
        bars.push_str(&format!(
            "<rect x=\"{:.1}\" y=\"{bar:.1}\" width=\"4\" height=\"{:.1}\" class=\"bar\"><title>#{} took {}</title></rect>",
            x - 2.0,
            bottom - bar,
            r.id,
            duration(r.duration_ms)
        ));
        let y = y_of(r.size_bytes.unwrap_or(0) as f64 / max_size as f64);
        points.push(format!("{x:.1},{y:.1}"));
    }
    let label = |x: f64, y: f64, anchor: &str, text: &str| {
        format!("<text x=\"{x:.0}\" y=\"{y:.0}\" text-anchor=\"{anchor}\">{text}</text>")
    };
    let axes = [
        format!("<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom}\" class=\"axis\"/>"),
        format!(
            "<line x1=\"{right}\" y1=\"{top}\" x2=\"{right}\" y2=\"{bottom}\" class=\"axis\"/>"
        ),
        format!(
            "<line x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" class=\"axis\"/>"
        ),
        label(left - 4.0, top + 4.0, "end", &size(Some(max_size))),
        label(left - 4.0, bottom, "end", "0 B"),
        label(right + 4.0, top + 4.0, "start", &duration(Some(max_ms))),
        label(right + 4.0, bottom, "start", "0 s"),
        label(left - 4.0, (top + bottom) / 2.0, "end", "size"),
        label(right + 4.0, (top + bottom) / 2.0, "start", "duration"),
        label(
            (left + right) / 2.0,
            bottom + 16.0,
            "middle",
            &format!("last {} successful backups, oldest on the left", good.len()),
        ),
        // The legend.
        format!(
            "<line x1=\"{left}\" y1=\"9\" x2=\"{}\" y2=\"9\" class=\"line\"/>",
            left + 16.0
        ),
        label(left + 20.0, 13.0, "start", "size"),
        format!(
            "<rect x=\"{}\" y=\"4\" width=\"8\" height=\"10\" class=\"bar\"/>",
            left + 64.0
        ),
        label(left + 76.0, 13.0, "start", "duration"),
    ]
    .concat();
    format!(
        "<svg viewBox=\"0 0 {w} {h}\" class=\"chart\" role=\"img\" aria-label=\"Backup size (line, left axis) and duration (bars, right axis) of the last {} successful backups, oldest on the left\">{axes}{bars}<polyline points=\"{}\" class=\"line\"/></svg>",
        good.len(),
        points.join(" ")
    )
}
