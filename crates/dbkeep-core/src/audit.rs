//! Writing the audit log: each act goes to the catalog and, as one structured line, to the
//! log (target `dbkeep::audit`), for a log collector or SIEM to follow.

use dbkeep_model::audit::{AuditLog, Entry, Row};

/// The `tracing` target of the audit lines.
pub const TARGET: &str = "dbkeep::audit";

/// Records `entry` in the catalog's audit log and logs it. When the catalog cannot take the
/// row, the line is still logged, at error level, with why; the act itself is not undone.
pub fn record(log: &dyn AuditLog, entry: Entry) -> Option<Row> {
    let entry = entry.bounded();
    let stored = log.append_audit(&entry);
    let e = &entry;
    let (detail, source, agent) = (
        e.detail.as_deref().unwrap_or(""),
        e.source.as_deref().unwrap_or(""),
        e.user_agent.as_deref().unwrap_or(""),
    );
    match stored {
        Ok(row) => {
            tracing::info!(
                target: TARGET,
                id = row.id,
                actor = %e.actor,
                action = %e.action,
                target = %e.target,
                outcome = %e.outcome,
                detail,
                source,
                user_agent = agent,
                "audit"
            );
            Some(row)
        }
        Err(error) => {
            tracing::error!(
                target: TARGET,
                actor = %e.actor,
                action = %e.action,
                target = %e.target,
                outcome = %e.outcome,
                detail,
                source,
                user_agent = agent,
                %error,
                "audit row not stored: the catalog refused it"
            );
            None
        }
    }
}

/// The actor of a command run from a shell: `cli:` and the name of the Unix user running it
/// (from the password database, not the environment), or `cli:uid:N` when it has no name.
pub fn cli_actor() -> String {
    let uid = rustix::process::getuid().as_raw();
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| user_name(&passwd, uid));
    match name {
        Some(name) => format!("cli:{name}"),
        None => format!("cli:uid:{uid}"),
    }
}

/// The variable an application running dbkeep's commands names its own user in
/// (`django:alice`): the audit log's actor then, with the Unix user as a note.
pub const ACTOR_VARIABLE: &str = "DBKEEP_AUDIT_ACTOR";

/// Who a command acts for: the application's user named in [`ACTOR_VARIABLE`]
/// (`django:NAME`), or else the Unix user ([`cli_actor`]); and a note for the row's detail
/// (the Unix user behind the application, or why the variable was not taken).
pub fn command_actor() -> (String, Option<String>) {
    actor_from(std::env::var(ACTOR_VARIABLE).ok().as_deref(), &cli_actor())
}

fn actor_from(asked: Option<&str>, unix: &str) -> (String, Option<String>) {
    let Some(asked) = asked.filter(|a| !a.is_empty()) else {
        return (unix.to_string(), None);
    };
    let valid = asked.strip_prefix("django:").is_some_and(|name| {
        !name.is_empty()
            && name.len() <= 150
            && !name.chars().any(|c| c.is_control() || c.is_whitespace())
    });
    if valid {
        (asked.to_string(), Some(format!("via {unix}")))
    } else {
        let shown = dbkeep_model::text::escape_controls(asked, false);
        (
            unix.to_string(),
            Some(format!(
                "{ACTOR_VARIABLE}=`{shown}` ignored: it must be django:USER"
            )),
        )
    }
}

/// The name of user `uid` in a `passwd` file's text.
fn user_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?;
        (id.parse::<u32>().ok() == Some(uid) && !name.is_empty()).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_unix_user_is_named_from_the_password_database() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      # comment\n\
                      backup:x:34:34:backup:/var/backups:/usr/sbin/nologin\n";
        assert_eq!(user_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(user_name(passwd, 34).as_deref(), Some("backup"));
        assert_eq!(user_name(passwd, 1000), None);
        assert!(cli_actor().starts_with("cli:"));
    }

    #[test]
    fn an_application_names_its_user_and_the_unix_user_is_kept_beside_it() {
        assert_eq!(actor_from(None, "cli:www"), ("cli:www".into(), None));
        assert_eq!(
            actor_from(Some("django:alice@example.com"), "cli:www"),
            (
                "django:alice@example.com".into(),
                Some("via cli:www".into())
            )
        );
        for bad in ["user:admin", "django:", "django:a b", "django:x\ny"] {
            let (actor, note) = actor_from(Some(bad), "cli:www");
            assert_eq!(actor, "cli:www", "{bad}");
            assert!(note.unwrap().contains("ignored"), "{bad}");
        }
    }
}
