//! Stories of the audit log: rows appended and read back with filters, and a log that cannot
//! be rewritten.

use chrono::{TimeDelta, Utc};

use super::harness::Harness;
use dbkeep_model::audit::{Action, Entry, Outcome, Query};

fn entry(actor: &str, action: Action, target: &str, outcome: Outcome) -> Entry {
    Entry::new(actor, action, target, outcome)
}

pub(super) fn the_audit_log_is_read_newest_first_with_filters(h: &dyn Harness) {
    let c = h.catalog();
    let before = Utc::now() - TimeDelta::seconds(5);
    let failed = Entry {
        source: Some("192.0.2.7".into()),
        user_agent: Some("curl/8\nforged: line".into()),
        ..entry("anonymous", Action::Login, "alice", Outcome::Failed).detail("wrong password")
    };
    let first = c.append_audit(&failed).unwrap();
    assert!(first.time >= before && first.time <= Utc::now() + TimeDelta::seconds(5));
    // What is kept is bounded and one line.
    assert_eq!(
        first.entry.user_agent.as_deref(),
        Some("curl/8\\nforged: line")
    );
    c.append_audit(&entry("user:alice", Action::Login, "alice", Outcome::Ok))
        .unwrap();
    c.append_audit(&entry(
        "user:alice",
        Action::Download,
        "backup:7",
        Outcome::Ok,
    ))
    .unwrap();
    c.append_audit(&entry("token:ci#3", Action::Backup, "app", Outcome::Ok))
        .unwrap();
    let last = c
        .append_audit(
            &entry("user:bob", Action::Download, "backup:7", Outcome::Refused)
                .detail("the viewer role may not download"),
        )
        .unwrap();
    assert!(last.id > first.id);

    let all = c
        .audit(&Query {
            limit: 100,
            ..Query::default()
        })
        .unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0], last, "newest first, as appended");
    assert_eq!(all[4].entry, first.entry);
    assert!(all.windows(2).all(|w| w[0].time >= w[1].time));

    let actors = |q: Query| -> Vec<(String, Action)> {
        c.audit(&Query { limit: 100, ..q })
            .unwrap()
            .into_iter()
            .map(|r| (r.entry.actor, r.entry.action))
            .collect()
    };
    assert_eq!(
        actors(Query {
            actor: Some("user:alice".into()),
            ..Query::default()
        }),
        [
            ("user:alice".into(), Action::Download),
            ("user:alice".into(), Action::Login)
        ]
    );
    // An actor ending in `:` is every actor of that kind.
    assert_eq!(
        actors(Query {
            actor: Some("user:".into()),
            ..Query::default()
        })
        .len(),
        3
    );
    assert!(
        actors(Query {
            actor: Some("user".into()),
            ..Query::default()
        })
        .is_empty()
    );
    assert_eq!(
        actors(Query {
            action: Some(Action::Download),
            ..Query::default()
        }),
        [
            ("user:bob".into(), Action::Download),
            ("user:alice".into(), Action::Download)
        ]
    );
    assert!(
        actors(Query {
            since: Some(Utc::now() + TimeDelta::minutes(1)),
            ..Query::default()
        })
        .is_empty()
    );
    assert_eq!(
        actors(Query {
            since: Some(before),
            ..Query::default()
        })
        .len(),
        5
    );
    let page = c
        .audit(&Query {
            before_id: Some(last.id),
            limit: 2,
            ..Query::default()
        })
        .unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0].entry.actor, "token:ci#3");
}

pub(super) fn the_audit_log_is_append_only(h: &dyn Harness) {
    let c = h.catalog();
    c.append_audit(&entry("cli:root", Action::ServeStart, "", Outcome::Ok))
        .unwrap();
    for sql in [
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
    ] {
        let refused = h.try_tamper(sql).unwrap_err();
        assert!(refused.contains("audit log"), "{sql}: {refused}");
    }
    // Retention deletes only rows older than it, and never younger than 30 days.
    h.tamper(
        "INSERT INTO audit_log (at, actor, action, target, outcome)
         VALUES ('2020-01-01T00:00:00.000Z', 'cli:old', 'login', '', 'ok')",
    );
    assert_eq!(c.prune_audit(0).unwrap(), 1);
    assert_eq!(c.prune_audit(0).unwrap(), 0);
    let kept = c
        .audit(&Query {
            limit: 10,
            ..Query::default()
        })
        .unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].entry.actor, "cli:root");
}
