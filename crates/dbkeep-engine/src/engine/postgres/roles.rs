//! The server's roles on a restore: the SQL that creates those a stored `pg_dumpall
//! --globals-only` names and the target lacks, and what to say when a dump names one it lacks.

use super::literal;
use crate::engine::RestoreOptions;

/// psql's message, with what to do when the dump names roles this server lacks.
pub(super) fn hint(message: String, opts: &RestoreOptions) -> String {
    let missing_role = message.contains("role \"") && message.contains("does not exist");
    if missing_role && !(opts.leave.owners && opts.leave.privileges) {
        format!(
            "{message}\nThe dump names a role this server does not have: restore with --no-owner and --no-privileges (the objects then belong to the restoring user), or create the role first."
        )
    } else {
        message
    }
}

/// The roles of a `pg_dumpall --globals-only` output: each `CREATE ROLE name;` (the name as the
/// dump quotes it) with the attributes of its `ALTER ROLE name WITH …;`.
fn roles_in(globals: &str) -> Vec<(String, Option<String>)> {
    let statement = |line: &str, prefix: &str| {
        line.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(';'))
            .map(str::to_string)
    };
    let mut roles: Vec<(String, Option<String>)> = Vec::new();
    for line in globals.lines().map(str::trim) {
        if let Some(name) = statement(line, "CREATE ROLE ") {
            roles.push((name, None));
        } else if let Some(rest) = statement(line, "ALTER ROLE ")
            && let Some((name, attributes)) = rest.split_once(" WITH ")
            && let Some(role) = roles.iter_mut().find(|(n, _)| n == name)
        {
            role.1 = Some(attributes.to_string());
        }
    }
    roles
}

/// SQL that creates each role of the stored roles `opts` carries (none without
/// `--with-globals`) that the server lacks.
pub(super) fn missing_of(opts: &RestoreOptions) -> String {
    opts.globals.as_deref().map(missing).unwrap_or_default()
}

/// SQL that creates each role of `globals` the server lacks, with its attributes, and never
/// changes one that exists.
fn missing(globals: &str) -> String {
    roles_in(globals)
        .into_iter()
        .map(|(name, attributes)| {
            let bare = name
                .strip_prefix('"')
                .and_then(|n| n.strip_suffix('"'))
                .map_or_else(|| name.clone(), |n| n.replace("\"\"", "\""));
            let with = attributes.map(|a| format!(" WITH {a}")).unwrap_or_default();
            format!(
                "DO $dbkeep$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {}) THEN CREATE ROLE {name}{with}; END IF; END $dbkeep$;\n",
                literal(&bare)
            )
        })
        .collect()
}
