//! What `dbkeep doctor` finds: each check of the setup, how it stands, and what to do.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::vocab::string_enum;

string_enum! {
    /// How a check stands.
    Level {
        /// Fine.
        Ok => "ok",
        /// Works now, but something may fail later or is not as it should be.
        Warn => "warn",
        /// Broken: a backup, restore, copy or alert that relies on it fails.
        Fail => "fail",
    }
}

/// One check of the setup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What was checked: `database app: pg_dump against the server`.
    pub check: String,
    /// How it stands.
    pub level: Level,
    /// What was found, in words.
    pub detail: String,
    /// What to do about it, when it is not fine.
    pub fix: Option<String>,
}

impl Finding {
    /// A check that is fine.
    pub fn ok(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Finding {
            check: check.into(),
            level: Level::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A check at `level` (warn or fail), with what to do.
    pub fn bad(
        level: Level,
        check: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            check: check.into(),
            level,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}
