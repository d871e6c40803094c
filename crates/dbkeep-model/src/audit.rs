//! The audit log: one append-only row per security-relevant act (a login, a download, a
//! restore, a change of who may do what), kept in the catalog. A row never holds a secret or
//! a file's contents.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::Result;
use crate::vocab::string_enum;

string_enum! {
    /// What was done.
    Action {
        /// A login through the form (`outcome` failed: why, in `detail`).
        Login => "login",
        /// A logout.
        Logout => "logout",
        /// A user's password was changed.
        PasswordChange => "password_change",
        /// A user's second factor was enabled or removed.
        TwoFactorChange => "2fa_change",
        /// A user's sessions were ended by an admin.
        SessionsEnd => "sessions_end",
        /// A user was added.
        UserAdd => "user_add",
        /// A user's role or databases were changed.
        UserChange => "user_change",
        /// A user was deleted.
        UserDelete => "user_delete",
        /// An API token was created.
        TokenCreate => "token_create",
        /// An API token was revoked.
        TokenRevoke => "token_revoke",
        /// A backup was started by hand.
        Backup => "backup",
        /// A backup's file was downloaded.
        Download => "download",
        /// A backup was restored.
        Restore => "restore",
        /// A backup was verified by hand.
        Verify => "verify",
        /// Existing backup files were imported.
        Import => "import",
        /// A backup was pinned.
        Pin => "pin",
        /// A backup was unpinned.
        Unpin => "unpin",
        /// Retention was run by hand.
        Prune => "prune",
        /// A page or API route was asked for (recorded when refused).
        Access => "access",
        /// The service started.
        ServeStart => "serve_start",
        /// The service stopped.
        ServeStop => "serve_stop",
        /// Old audit rows were removed by `audit_retention`.
        AuditPrune => "audit_prune",
    }
}

string_enum! {
    /// How it ended.
    Outcome {
        /// Done.
        Ok => "ok",
        /// Tried and failed (`detail` says why).
        Failed => "failed",
        /// Not allowed: the actor lacks the role or the database (`detail` says which).
        Refused => "refused",
    }
}

/// One act, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Who: `user:NAME`, `token:NAME#ID`, `cli:UNIX_USER`, `scheduler`, `django:USER`, or
    /// `anonymous` (a login attempt for an unknown or wrong user names the user in `target`).
    pub actor: String,
    /// What.
    pub action: Action,
    /// On what: a database, `backup:ID`, a user or token name; empty when nothing.
    pub target: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it failed or was refused, or what it did (never a secret).
    pub detail: Option<String>,
    /// The client's address, for web and API requests.
    pub source: Option<String>,
    /// The client's `User-Agent`, for web and API requests.
    pub user_agent: Option<String>,
}

/// The longest text any field of a row keeps, in bytes; longer text is cut.
pub const MAX_FIELD_BYTES: usize = 512;

impl Entry {
    /// An act by `actor` on `target` that ended `outcome`, without the optional fields.
    pub fn new(
        actor: impl Into<String>,
        action: Action,
        target: impl Into<String>,
        outcome: Outcome,
    ) -> Self {
        Self {
            actor: actor.into(),
            action,
            target: target.into(),
            outcome,
            detail: None,
            source: None,
            user_agent: None,
        }
    }

    /// The same act with `detail`.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The same entry with every field cut to [`MAX_FIELD_BYTES`] and control characters
    /// escaped, so that no request can make a row, or the log line beside it, say more than
    /// one thing.
    #[must_use]
    pub fn bounded(self) -> Self {
        let field = |s: String| cut(&crate::text::escape_controls(&s, false));
        Self {
            actor: field(self.actor),
            action: self.action,
            target: field(self.target),
            outcome: self.outcome,
            detail: self.detail.map(field),
            source: self.source.map(field),
            user_agent: self.user_agent.map(field),
        }
    }
}

/// `s` cut to at most [`MAX_FIELD_BYTES`] bytes at a character boundary.
fn cut(s: &str) -> String {
    let mut end = s.len().min(MAX_FIELD_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// A recorded row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Its place in the log (increasing).
    pub id: i64,
    /// When, by the catalog's clock.
    pub time: DateTime<Utc>,
    /// What was recorded.
    pub entry: Entry,
}

/// Which rows to read.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only rows at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only rows by this actor (exactly, or every actor starting with it when it ends in `:`).
    pub actor: Option<String>,
    /// Only rows of this action.
    pub action: Option<Action>,
    /// Only rows with an id below this one (to page back).
    pub before_id: Option<i64>,
    /// At most this many rows, newest first.
    pub limit: u32,
}

/// The shortest `audit_retention`: rows younger than this cannot be deleted, by dbkeep or by
/// anyone writing to the catalog (its triggers refuse).
pub const MIN_RETENTION_DAYS: i64 = 30;

/// Where the audit log is kept: the catalog, shared by every instance.
pub trait AuditLog: Send + Sync {
    /// Appends a row, timed by the catalog's own clock.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn append_audit(&self, entry: &Entry) -> Result<Row>;

    /// Rows matching `query`, newest first.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn audit(&self, query: &Query) -> Result<Vec<Row>>;

    /// Deletes rows older than `days` days by the catalog's clock (at least
    /// [`MIN_RETENTION_DAYS`]); returns how many.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn prune_audit(&self, days: u32) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_bounded_entry_is_one_line_of_limited_size() {
        let e = Entry {
            user_agent: Some(format!("agent\nfake line{}", "é".repeat(600))),
            ..Entry::new("user:a\r\nuser:b", Action::Login, "x", Outcome::Failed)
        }
        .bounded();
        assert!(
            !e.actor.contains('\n') && !e.actor.contains('\r'),
            "{}",
            e.actor
        );
        let agent = e.user_agent.unwrap();
        assert!(
            !agent.contains('\n') && agent.len() <= MAX_FIELD_BYTES,
            "{agent}"
        );
        assert_eq!("refused".parse::<Outcome>(), Ok(Outcome::Refused));
        assert_eq!(Action::ServeStart.as_str(), "serve_start");
    }
}
