//! Stories of what retention keeps in the catalog: pins, prunes of many rows at once, off-site
//! copies marked pruned, and the policy each destination was last pruned under.

use std::time::{Duration, Instant};

use super::harness::{Harness, Shared};
use super::{T0, at, begin, good, ms};
use dbkeep_model::catalog::{ListFilter, format_time};
use dbkeep_model::error::Error;

/// How long marking [`MANY`] rows pruned may take at most: "well under a second".
const MANY_IN: Duration = Duration::from_secs(1);

/// How many rows a prune marks at once in [`many_rows_are_marked_pruned_at_once`].
const MANY: usize = 10_000;

/// `(pinned, note)` of backup `id`, as `get` and a listing read it (they must agree).
fn pin(c: &dyn Shared, id: i64) -> (bool, Option<String>) {
    let got = c.get(id).unwrap().unwrap();
    let listed = c
        .list(&ListFilter::default())
        .unwrap()
        .into_iter()
        .find(|r| r.id == id)
        .unwrap();
    assert_eq!(
        (got.pinned, &got.pin_note),
        (listed.pinned, &listed.pin_note),
        "get and list disagree on #{id}"
    );
    (got.pinned, got.pin_note)
}

/// The message of a refused pin of `id`.
#[track_caller]
fn refused(c: &dyn Shared, id: i64) -> String {
    match c.set_pin(id, true, Some("keep it")) {
        Err(Error::Refused(message)) => message,
        other => panic!("pinning #{id} was not refused: {other:?}"),
    }
}

pub(super) fn pins_are_kept_with_their_notes(h: &dyn Harness) {
    let c = h.catalog();
    let (first, second) = (
        good(c, "app", "a1.db.gz", 0),
        good(c, "app", "a2.db.gz", 10),
    );
    let failed = begin(c, "app", "a3.db.gz", 20);
    c.fail(failed, "disk full", at(T0), 1).unwrap();
    let running = begin(c, "main", "m1.sql.gz", 30);
    assert_eq!(pin(c, first), (false, None), "a new backup is not pinned");

    let stamp = c.change_stamp().unwrap();
    assert!(
        c.set_pin(first, true, Some("before the migration"))
            .unwrap()
    );
    assert!(c.change_stamp().unwrap() > stamp, "a pin moves the stamp");
    assert_eq!(pin(c, first), (true, Some("before the migration".into())));
    assert_eq!(pin(c, second), (false, None), "only the one asked for");
    // Another instance sees it, and so does a page about every database.
    assert!(h.open().get(first).unwrap().unwrap().pinned);
    let recent = c.recent_of_each(&["app".to_string()], None, 10).unwrap();
    let on_page: Vec<(i64, bool)> = recent.iter().map(|r| (r.id, r.pinned)).collect();
    assert_eq!(on_page, [(failed, false), (second, false), (first, true)]);

    // Pinned again: the new note replaces the old, and no note is no note.
    assert!(c.set_pin(first, true, Some("legal hold")).unwrap());
    assert_eq!(pin(c, first), (true, Some("legal hold".into())));
    assert!(c.set_pin(first, true, None).unwrap());
    assert_eq!(pin(c, first), (true, None));
    assert!(c.set_pin(second, true, Some("quarter end")).unwrap());

    // Only a successful backup can be pinned; nothing of the refused rows changes.
    let stamp = c.change_stamp().unwrap();
    assert_eq!(
        refused(c, failed),
        format!("backup #{failed} is failed: only a successful backup can be pinned")
    );
    assert_eq!(
        refused(c, running),
        format!("backup #{running} is in_progress: only a successful backup can be pinned")
    );
    assert_eq!(pin(c, failed), (false, None));
    assert_eq!(pin(c, running), (false, None));
    assert_eq!(
        c.change_stamp().unwrap(),
        stamp,
        "a refused pin writes nothing"
    );

    // No such row: false, pinning or not.
    assert!(!c.set_pin(9999, true, Some("x")).unwrap());
    assert!(!c.set_pin(9999, false, None).unwrap());

    // Unpinned: its note goes with it; unpinning again (or what never was pinned) is fine.
    let stamp = c.change_stamp().unwrap();
    assert!(c.set_pin(second, false, Some("ignored")).unwrap());
    assert!(
        c.change_stamp().unwrap() > stamp,
        "an unpin moves the stamp"
    );
    assert_eq!(pin(c, second), (false, None));
    assert!(c.set_pin(second, false, None).unwrap());
    assert!(c.set_pin(failed, false, None).unwrap());
    assert_eq!(pin(c, first), (true, None), "the other pin stays");
    // A pruned backup keeps its pin's record: the row says what was asked of it.
    c.mark_pruned(first, at(T0)).unwrap();
    assert_eq!(pin(c, first), (true, None));
}

pub(super) fn many_rows_are_marked_pruned_at_once(h: &dyn Harness) {
    let c = h.catalog();
    let kept = good(c, "app", "kept.db.gz", 0);
    let many: Vec<i64> = (0..MANY)
        .map(|n| begin(c, "app", &format!("a{n}.db.gz"), n as i64))
        .collect();
    let later = good(c, "app", "later.db.gz", 20_000);
    let pruned = at("2026-12-09T00:00:00.5009Z");
    let stamp = c.change_stamp().unwrap();
    let started = Instant::now();
    c.mark_pruned_many(&many, pruned).unwrap();
    let took = started.elapsed();
    assert!(took < MANY_IN, "{MANY} rows marked pruned in {took:?}");
    assert!(c.change_stamp().unwrap() > stamp, "a prune moves the stamp");

    let rows = c.list(&ListFilter::default()).unwrap();
    assert_eq!(rows.len(), MANY + 2);
    let (marked, unmarked): (Vec<_>, Vec<_>) = rows.iter().partition(|r| r.pruned_at.is_some());
    assert_eq!(marked.len(), MANY);
    assert!(marked.iter().all(|r| r.pruned_at == Some(ms(pruned))));
    let unmarked: Vec<i64> = unmarked.iter().map(|r| r.id).collect();
    assert_eq!(unmarked, [later, kept], "only the rows named");

    // Ids with no row are passed over, with the others still marked; none at all is fine.
    c.mark_pruned_many(&[kept, 99_999], pruned).unwrap();
    assert_eq!(c.get(kept).unwrap().unwrap().pruned_at, Some(ms(pruned)));
    let stamp = c.change_stamp().unwrap();
    c.mark_pruned_many(&[], pruned).unwrap();
    assert_eq!(c.change_stamp().unwrap(), stamp);
    assert_eq!(c.get(later).unwrap().unwrap().pruned_at, None);
}

pub(super) fn copies_are_marked_pruned(h: &dyn Harness) {
    let c = h.catalog();
    let (first, second) = (
        good(c, "app", "a1.db.gz", 0),
        good(c, "app", "a2.db.gz", 10),
    );
    let uploaded = Some(at(T0));
    for (id, store) in [(first, "s3"), (first, "gcs"), (second, "s3")] {
        c.record_copy(&super::beside::copy(id, store, uploaded))
            .unwrap();
    }
    let pruned = at("2026-12-09T00:00:00.5009Z");
    let stamp = c.change_stamp().unwrap();
    c.mark_copies_pruned(
        &[
            (first, "s3".to_string()),
            (second, "s3".to_string()),
            (first, "nosuch".to_string()),
            (9999, "s3".to_string()),
        ],
        pruned,
    )
    .unwrap();
    assert!(c.change_stamp().unwrap() > stamp, "a prune moves the stamp");
    let state = |id| -> Vec<(String, Option<chrono::DateTime<chrono::Utc>>)> {
        c.copies(id)
            .unwrap()
            .into_iter()
            .map(|copy| (copy.store, copy.pruned_at))
            .collect()
    };
    assert_eq!(
        state(first),
        [
            ("gcs".to_string(), None),
            ("s3".to_string(), Some(ms(pruned)))
        ]
    );
    assert_eq!(state(second), [("s3".to_string(), Some(ms(pruned)))]);
    // The record's summary of its copies says so too; the backup itself is not pruned.
    let record = c.get(first).unwrap().unwrap();
    let summary: Vec<(&str, Option<&str>)> = record
        .copies
        .iter()
        .map(|s| (s.store.as_str(), s.pruned_at.as_deref()))
        .collect();
    let when = format_time(&pruned);
    assert_eq!(summary, [("gcs", None), ("s3", Some(when.as_str()))]);
    assert_eq!(record.pruned_at, None);
    let stamp = c.change_stamp().unwrap();
    c.mark_copies_pruned(&[], pruned).unwrap();
    assert_eq!(c.change_stamp().unwrap(), stamp);
}

pub(super) fn retention_marks_are_set_replaced_and_cleared(h: &dyn Harness) {
    let c = h.catalog();
    let t = at(T0);
    assert_eq!(c.retention_mark("app", "local").unwrap(), None);
    assert!(c.retention_marks().unwrap().is_empty());
    c.set_retention_mark("app", "local", "keep_last = 3", t)
        .unwrap();
    c.set_retention_mark("app", "s3", "keep_days = 30", t)
        .unwrap();
    c.set_retention_mark("app", "B2", "keep_days = 90", t)
        .unwrap();
    c.set_retention_mark("main", "local", "keep_last = 1", t)
        .unwrap();
    assert_eq!(
        c.retention_mark("app", "local").unwrap().as_deref(),
        Some("keep_last = 3")
    );
    assert_eq!(c.retention_mark("app", "gcs").unwrap(), None);
    assert_eq!(c.retention_mark("other", "local").unwrap(), None);

    // A later prune under another policy replaces its destination's mark, and only that one.
    c.set_retention_mark("app", "local", "keep_last = 5, keep_days = 7", t)
        .unwrap();
    let mark = |d: &str, s: &str, p: &str| (d.to_string(), s.to_string(), p.to_string());
    let all = vec![
        mark("app", "B2", "keep_days = 90"),
        mark("app", "local", "keep_last = 5, keep_days = 7"),
        mark("app", "s3", "keep_days = 30"),
        mark("main", "local", "keep_last = 1"),
    ];
    assert_eq!(c.retention_marks().unwrap(), all, "by name, byte-wise");
    assert_eq!(h.open().retention_marks().unwrap(), all, "another instance");

    // Cleared: every destination of that database, no other database's.
    c.clear_retention_marks("app").unwrap();
    c.clear_retention_marks("nosuch").unwrap();
    assert_eq!(
        c.retention_marks().unwrap(),
        [mark("main", "local", "keep_last = 1")]
    );
    assert_eq!(c.retention_mark("app", "s3").unwrap(), None);
    c.set_retention_mark("app", "s3", "keep_days = 30", t)
        .unwrap();
    assert_eq!(
        c.retention_mark("app", "s3").unwrap().as_deref(),
        Some("keep_days = 30")
    );
}
