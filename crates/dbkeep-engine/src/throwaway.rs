//! Names for what a run makes and removes again (a verification's copy, a restore's database
//! before it is renamed into place), that tell which machine and process made them: so the
//! next run can remove what a killed one left behind, and only that (never a live run's,
//! never another machine's).

use dbkeep_config::config::ServerTarget;
use dbkeep_model::error::Result;

/// `<prefix>_<mark>_<pid>_<random>`: this machine's mark, this process's id and six random
/// hex digits. Short enough for a PostgreSQL or MySQL name when `prefix` is.
///
/// # Errors
/// When the operating system's random source fails.
pub fn name(prefix: &str) -> Result<String> {
    let token = dbkeep_model::token::random_token()?;
    let random = token.get(..6).unwrap_or(&token);
    Ok(format!(
        "{prefix}_{}_{}_{random}",
        machine_mark(),
        std::process::id()
    ))
}

/// Eight hex digits that tell this machine (from its host name).
pub fn machine_mark() -> String {
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    dbkeep_model::token::token_digest(&host)[..8].to_string()
}

/// Whether `name` (`…_<mark>_<pid>_<random>`, a file's `.db` suffix allowed) was made by a
/// process of this machine that is gone.
pub fn orphaned(name: &str) -> bool {
    let stem = name.trim_end_matches(".db");
    let mut parts = stem.rsplit('_');
    let (_random, pid, mark) = (parts.next(), parts.next(), parts.next());
    let pid = pid.and_then(|p| p.parse::<i32>().ok());
    match (mark, pid.and_then(rustix::process::Pid::from_raw)) {
        (Some(mark), Some(pid)) if mark == machine_mark() => {
            matches!(
                rustix::process::test_kill_process(pid),
                Err(rustix::io::Errno::SRCH)
            )
        }
        _ => false,
    }
}

/// Drops, with `drop`, each of `names` (the databases or files named with `prefix`, see
/// [`like`]) that a process of this machine left behind when it was killed; returns them.
///
/// # Errors
/// The first that `drop` could not remove.
pub fn drop_orphans(names: Vec<String>, drop: impl Fn(&str) -> Result<()>) -> Result<Vec<String>> {
    let orphans: Vec<String> = names.into_iter().filter(|n| orphaned(n)).collect();
    for name in &orphans {
        drop(name)?;
    }
    Ok(orphans)
}

/// The SQL `LIKE` pattern of the names [`name`] makes with `prefix`.
pub fn like(prefix: &str) -> String {
    format!("{}\\_%", prefix.replace('_', "\\_"))
}

/// `server` with another database name (a `dbname=` parameter, which libpq would prefer to
/// the path, is dropped: the other database must never turn out to be the first).
pub fn on_server(server: &ServerTarget, database: &str) -> ServerTarget {
    let mut url = server.url.clone();
    url.set_path(&format!("/{database}"));
    let kept: Vec<String> = url
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some("dbname"))
        .map(str::to_string)
        .collect();
    url.set_query((!kept.is_empty()).then(|| kept.join("&")).as_deref());
    ServerTarget {
        url,
        password: server.password.clone(),
        password_env: server.password_env.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_name_tells_this_machine_and_a_gone_process() {
        let live = name("dbkeep_restore").unwrap();
        assert!(live.starts_with(&format!("dbkeep_restore_{}_", machine_mark())));
        assert!(live.len() <= 63, "{live}");
        assert!(!orphaned(&live), "this process is alive");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        assert!(orphaned(&format!(
            "dbkeep_restore_{}_{gone}_abcdef",
            machine_mark()
        )));
        assert!(orphaned(&format!(
            ".verify_3_{}_{gone}_abcdef.db",
            machine_mark()
        )));
        assert!(!orphaned(&format!("dbkeep_restore_00000000_{gone}_abcdef")));
        assert!(!orphaned("dbkeep_restore_by_hand"));
        assert_eq!(like("dbkeep_verify_3"), "dbkeep\\_verify\\_3\\_%");
        let dropped = std::cell::RefCell::new(Vec::new());
        let left = drop_orphans(
            vec![
                live.clone(),
                format!("dbkeep_restore_{}_{gone}_abcdef", machine_mark()),
            ],
            |n| {
                dropped.borrow_mut().push(n.to_string());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(left, dropped.into_inner());
        assert_eq!(left.len(), 1);
    }
}
