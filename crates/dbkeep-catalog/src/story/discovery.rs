//! Stories of what discovery keeps in the catalog: each discovered database's state, changed
//! once however many instances write it, and how each server answered last.

use std::sync::Barrier;

use super::harness::Harness;
use super::{T0, at, ms};
use dbkeep_model::discovery::{DiscoveredDatabase, DiscoveryState};

fn row(name: &str, server: &str, state: DiscoveryState, when: &str) -> DiscoveredDatabase {
    DiscoveredDatabase {
        name: name.into(),
        server: server.into(),
        database: name.split_once('-').map_or(name, |(_, d)| d).into(),
        state,
        found_at: at(when),
        changed_at: at(when),
        detail: None,
    }
}

pub(super) fn discovered_databases_change_state_once(h: &impl Harness) {
    let c = h.catalog();
    assert!(c.discovered().unwrap().is_empty());
    let stamp = c.change_stamp().unwrap();
    // New: recorded, and the verdicts' stamp moves.
    assert!(
        c.set_discovered(&row("pg-b", "pg", DiscoveryState::Known, T0))
            .unwrap()
    );
    assert!(c.change_stamp().unwrap() > stamp);
    assert!(
        c.set_discovered(&row("pg-a", "pg", DiscoveryState::Known, T0))
            .unwrap()
    );
    assert!(
        c.set_discovered(&row("my-z", "my", DiscoveryState::Known, T0))
            .unwrap()
    );
    // The same state again changes nothing, not even the times.
    let later = "2026-12-02T00:00:00Z";
    assert!(
        !c.set_discovered(&row("pg-a", "pg", DiscoveryState::Known, later))
            .unwrap()
    );
    let names: Vec<String> = c
        .discovered()
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["my-z", "pg-a", "pg-b"], "by server, then name");
    let a = |c: &dyn dbkeep_model::discovery::Discoveries| {
        c.discovered()
            .unwrap()
            .into_iter()
            .find(|d| d.name == "pg-a")
            .unwrap()
    };
    assert_eq!(a(c).changed_at, ms(at(T0)));
    // Gone: the state, the time of the change and why; found_at stays.
    let mut gone = row("pg-a", "pg", DiscoveryState::Gone, later);
    gone.detail = Some("no longer on the server".into());
    assert!(c.set_discovered(&gone).unwrap());
    let now = a(c);
    assert_eq!(now.state, DiscoveryState::Gone);
    assert_eq!(now.found_at, ms(at(T0)));
    assert_eq!(now.changed_at, ms(at(later)));
    assert_eq!(now.detail.as_deref(), Some("no longer on the server"));
    // Back again, then unreadable with the server's words.
    assert!(
        c.set_discovered(&row("pg-a", "pg", DiscoveryState::Known, later))
            .unwrap()
    );
    let mut locked = row("pg-a", "pg", DiscoveryState::Unreadable, later);
    locked.detail = Some("permission denied for database \"a\"".into());
    assert!(c.set_discovered(&locked).unwrap());
    assert_eq!(
        a(c).detail.as_deref(),
        Some("permission denied for database \"a\"")
    );
    // Another process sees the same.
    let other = h.open();
    assert_eq!(other.discovered().unwrap(), c.discovered().unwrap());
}

pub(super) fn two_instances_record_a_found_database_once(h: &impl Harness) {
    let others: Vec<_> = (0..4).map(|_| h.open()).collect();
    for round in 0..5 {
        let name = format!("pg-t{round}");
        let start = Barrier::new(others.len());
        let wins: usize = std::thread::scope(|s| {
            let handles: Vec<_> = others
                .iter()
                .map(|c| {
                    let (start, name) = (&start, &name);
                    s.spawn(move || {
                        start.wait();
                        usize::from(
                            c.set_discovered(&row(name, "pg", DiscoveryState::Known, T0))
                                .unwrap(),
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(
            wins, 1,
            "round {round}: {wins} instances announced `{name}`"
        );
    }
}

pub(super) fn server_checks_keep_the_last_answer(h: &impl Harness) {
    let c = h.catalog();
    assert!(c.server_checks().unwrap().is_empty());
    c.record_server_check("pg", at(T0), Some("connection refused"))
        .unwrap();
    c.record_server_check("my", at(T0), None).unwrap();
    let later = at("2026-12-02T00:00:00Z");
    c.record_server_check("pg", later, None).unwrap();
    let checks = c.server_checks().unwrap();
    let shown: Vec<(&str, Option<&str>)> = checks
        .iter()
        .map(|k| (k.server.as_str(), k.error.as_deref()))
        .collect();
    assert_eq!(shown, [("my", None), ("pg", None)]);
    assert_eq!(checks[1].checked_at, ms(later));
    // A server's words may hold anything, a NUL too: kept (as U+FFFD where text cannot hold
    // one), never an error that loses the discovery.
    c.record_server_check("my", later, Some("bad\0byte"))
        .unwrap();
    let error = c.server_checks().unwrap()[0].error.clone().unwrap();
    assert!(
        error == "bad\0byte" || error == "bad\u{FFFD}byte",
        "{error:?}"
    );
    let mut odd = row("pg-odd", "pg", DiscoveryState::Unreadable, T0);
    odd.detail = Some("no\0access".into());
    assert!(c.set_discovered(&odd).unwrap());
}
