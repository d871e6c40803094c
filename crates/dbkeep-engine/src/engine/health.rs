//! What `dbkeep doctor` asks an engine: its database reachable with its credentials, its dump
//! tool found and fit for the server's version, and its privileges enough to dump every table.
//! The version arithmetic lives here; each engine asks its own server.

use std::path::Path;
use std::process::{Command, Stdio};

use dbkeep_model::health::{Finding, Level};

/// The finding of a database its engine could not reach: the tool's words, and what to check.
pub(crate) fn unreachable(check: String, e: &dbkeep_model::error::Error) -> Finding {
    Finding::bad(
        Level::Fail,
        check,
        e.to_string(),
        "check its url, and that password_env names a variable holding the password",
    )
}

/// What `program --version` prints (its first line), or why it could not run.
pub(crate) fn tool_version(program: &Path) -> Result<String, String> {
    let out = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or_default().trim().to_string();
    if !out.status.success() || first.is_empty() {
        return Err(format!(
            "{} --version said nothing a version could be read from",
            program.display()
        ));
    }
    Ok(first)
}

/// The first `major.minor` in `text` (`pg_dump (PostgreSQL) 15.19` → (15, 19)), after
/// `after` when given (`Distrib 10.11.6-MariaDB` for an old MariaDB client's real version).
pub(crate) fn version_in(text: &str, after: Option<&str>) -> Option<(u32, u32)> {
    let text = after
        .and_then(|a| text.split_once(a).map(|(_, rest)| rest))
        .unwrap_or(text);
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|w| w.contains('.') && w.starts_with(|c: char| c.is_ascii_digit()))
        .and_then(|w| {
            let mut parts = w.split('.');
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
            Some((major, minor))
        })
}

/// PostgreSQL's major version from `server_version_num` (150004 → 15; 90624 → 9.6).
pub(crate) fn pg_major(num: u32) -> (u32, u32) {
    if num >= 100_000 {
        (num / 10_000, 0)
    } else {
        (num / 10_000, (num / 100) % 100)
    }
}

/// Whether a PostgreSQL client of `tool` dumps a server of `server` (both majors): pg_dump
/// refuses a newer server.
pub(crate) fn pg_dump_fits(what: &str, tool: &str, server_num: u32, hint: &str) -> Finding {
    let check = format!("{what}: pg_dump against the server");
    let server = pg_major(server_num);
    let shown = |(major, minor): (u32, u32)| {
        if major >= 10 {
            major.to_string()
        } else {
            format!("{major}.{minor}")
        }
    };
    match version_in(tool, Some(") ")).or_else(|| version_in(tool, None)) {
        None => Finding::bad(
            Level::Warn,
            check,
            format!("cannot tell pg_dump's version from `{tool}`"),
            hint,
        ),
        Some(v) => {
            let major = if v.0 >= 10 { (v.0, 0) } else { v };
            if major < server {
                Finding::bad(
                    Level::Fail,
                    check,
                    format!(
                        "pg_dump {} is older than the server ({}): it refuses to dump a newer server, so tonight's backup fails",
                        shown(major),
                        shown(server)
                    ),
                    format!(
                        "install the PostgreSQL {} client (Debian: postgresql-client-{}) and set pg_dump_path to its pg_dump",
                        shown(server),
                        shown(server)
                    ),
                )
            } else {
                Finding::ok(
                    check,
                    format!(
                        "pg_dump {} for a PostgreSQL {} server",
                        shown(major),
                        shown(server)
                    ),
                )
            }
        }
    }
}

/// Whether a MySQL or MariaDB dump tool (as `--version` names it) fits the server (as
/// `VERSION()` names it): the two lines of the family have parted ways.
pub(crate) fn mysql_dump_fits(what: &str, tool: &str, server: &str) -> Finding {
    let check = format!("{what}: the dump tool against the server");
    let tool_maria = tool.contains("MariaDB");
    let server_maria = server.contains("MariaDB");
    // The real version follows `Distrib` (`mysqldump  Ver 10.13 Distrib 5.7.44`, an old
    // MariaDB's `Ver 10.19 Distrib 10.11.6-MariaDB`), else `from` (a new mariadb-dump), else
    // `Ver` (MySQL 8).
    let tool_version = version_in(tool, Some("Distrib "))
        .or_else(|| version_in(tool, Some("from ")))
        .or_else(|| version_in(tool, Some("Ver ")))
        .or_else(|| version_in(tool, None));
    let server_version = version_in(server, None);
    let named = |maria: bool| if maria { "MariaDB" } else { "MySQL" };
    let shown = |v: Option<(u32, u32)>| v.map_or("?".to_string(), |(a, b)| format!("{a}.{b}"));
    let detail = format!(
        "the {} {} dump tool, a {} {} server",
        named(tool_maria),
        shown(tool_version),
        named(server_maria),
        shown(server_version)
    );
    match (tool_maria, server_maria) {
        (true, false) if server_version.is_some_and(|v| v.0 >= 8) => Finding::bad(
            Level::Fail,
            check,
            format!(
                "{detail}: MariaDB's mariadb-dump does not follow MySQL 8 (its authentication plugin and data dictionary), so its dumps fail or miss objects"
            ),
            "install MySQL's own client (mysql-client) and set mysqldump_path to its mysqldump",
        ),
        (false, true) if tool_version.is_some_and(|v| v.0 >= 8) => Finding::bad(
            Level::Fail,
            check,
            format!(
                "{detail}: MySQL 8's mysqldump asks a MariaDB server for what it lacks (COLUMN_STATISTICS) and fails"
            ),
            "install MariaDB's client (Debian: mariadb-client) and set mysqldump_path = \"mariadb-dump\"",
        ),
        _ if tool_maria == server_maria
            && matches!((tool_version, server_version), (Some(t), Some(s)) if t < s) =>
        {
            Finding::bad(
                Level::Warn,
                check,
                format!(
                    "{detail}: the tool is older than the server, and may not know all of its objects"
                ),
                format!(
                    "install a {} client of the server's version or newer",
                    named(server_maria)
                ),
            )
        }
        _ => Finding::ok(check, detail),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn versions_are_read_from_what_the_tools_and_servers_say() {
        assert_eq!(
            version_in(
                "pg_dump (PostgreSQL) 15.19 (Debian 15.19-0+deb12u1)",
                Some(") ")
            ),
            Some((15, 19))
        );
        assert_eq!(
            version_in("pg_dump (PostgreSQL) 9.6.24", Some(") ")),
            Some((9, 6))
        );
        assert_eq!(
            version_in(
                "mysqldump  Ver 10.19 Distrib 10.11.6-MariaDB, for debian-linux-gnu",
                Some("Distrib ")
            ),
            Some((10, 11))
        );
        assert_eq!(
            version_in(
                "mariadb-dump from 11.4.2-MariaDB, client 10.19",
                Some("from ")
            ),
            Some((11, 4))
        );
        assert_eq!(
            version_in("mysqldump  Ver 8.0.36 for Linux on x86_64", Some("Ver ")),
            Some((8, 0))
        );
        assert_eq!(version_in("no version here", None), None);
        assert_eq!(pg_major(150_004), (15, 0));
        assert_eq!(pg_major(90_624), (9, 6));
    }

    #[test]
    fn an_older_pg_dump_fails_and_a_newer_one_is_fine() {
        let old = pg_dump_fits("database app", "pg_dump (PostgreSQL) 14.11", 160_002, "h");
        assert_eq!(old.level, Level::Fail);
        assert!(
            old.detail
                .contains("pg_dump 14 is older than the server (16)"),
            "{old:?}"
        );
        assert!(old.fix.unwrap().contains("postgresql-client-16"));
        let newer = pg_dump_fits("database app", "pg_dump (PostgreSQL) 17.2", 150_004, "h");
        assert_eq!(newer.level, Level::Ok, "{newer:?}");
        let unreadable = pg_dump_fits("database app", "something else", 150_004, "h");
        assert_eq!(unreadable.level, Level::Warn);
    }

    #[test]
    fn the_mysql_family_lines_that_do_not_mix_are_named() {
        let maria_on_mysql = mysql_dump_fits(
            "db",
            "mariadb-dump from 11.4.2-MariaDB, client 10.19",
            "8.0.36",
        );
        assert_eq!(maria_on_mysql.level, Level::Fail, "{maria_on_mysql:?}");
        let mysql_on_maria = mysql_dump_fits(
            "db",
            "mysqldump  Ver 8.0.36 for Linux",
            "10.11.6-MariaDB-0+deb12u1",
        );
        assert_eq!(mysql_on_maria.level, Level::Fail, "{mysql_on_maria:?}");
        let mysql57 = "mysqldump  Ver 10.13 Distrib 5.7.44, for Linux (x86_64)";
        assert_eq!(
            mysql_dump_fits("db", mysql57, "10.11.6-MariaDB").level,
            Level::Ok
        );
        assert_eq!(mysql_dump_fits("db", mysql57, "8.0.36").level, Level::Warn);
        let same = mysql_dump_fits(
            "db",
            "mysqldump  Ver 10.19 Distrib 10.11.6-MariaDB, for debian-linux-gnu",
            "10.11.6-MariaDB-0+deb12u1",
        );
        assert_eq!(same.level, Level::Ok, "{same:?}");
        let older = mysql_dump_fits("db", "mariadb-dump from 10.5.2-MariaDB", "11.4.2-MariaDB");
        assert_eq!(older.level, Level::Warn, "{older:?}");
    }
}
