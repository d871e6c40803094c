//! Stories of what the catalog keeps beside the backups: accounts (users, sessions, API
//! tokens), off-site copies, and notifications that failed.

use chrono::{DateTime, TimeDelta, Utc};

use super::harness::{Harness, Shared};
use super::{T0, at, good, ms, same};
use dbkeep_model::accounts::{Databases, Grant, NewToken, Role, TokenGrant};
use dbkeep_model::catalog::{CopySummary, format_time};
use dbkeep_model::copies::{Copy, CopyState};
use dbkeep_model::deliveries::Delivery;
use dbkeep_model::vocab::EventKind;

pub(super) fn accounts_sessions_and_tokens(h: &dyn Harness) {
    let c = h.catalog();
    let now = at(T0);
    let mins = |m| now + TimeDelta::minutes(m);
    let admin = Grant::everywhere(Role::Admin);
    let alice = c.add_user("alice", "hash-1", &admin, now).unwrap();
    assert_eq!(alice.name, "alice");
    assert!(
        c.add_user("alice", "hash-x", &admin, now).is_err(),
        "names are unique"
    );
    let shop_viewer = Grant {
        role: Role::Viewer,
        databases: Databases::parse("shop,tenants-*").unwrap(),
    };
    let bob = c.add_user("Bob", "hash-2", &shop_viewer, mins(1)).unwrap();
    assert_ne!(alice.id, bob.id);
    same(
        c.user_by_name("alice").unwrap(),
        Some((alice.clone(), "hash-1".into())),
    );
    same(c.user_by_name("nobody").unwrap(), None);
    same(
        c.users()
            .unwrap()
            .into_iter()
            .map(|u| (u.name, u.grant, u.created_at))
            .collect::<Vec<_>>(),
        vec![
            ("Bob".into(), shop_viewer.clone(), ms(mins(1))),
            ("alice".into(), admin.clone(), ms(now)),
        ],
    );
    same(
        c.user_by_name("Bob").unwrap().unwrap().0.grant,
        shop_viewer.clone(),
    );
    assert_eq!(c.user_count().unwrap(), 2);

    c.add_session("s1", alice.id, "csrf-1", now, mins(60))
        .unwrap();
    c.add_session("s2", alice.id, "csrf-2", now, mins(120))
        .unwrap();
    let s = c.session("s1", mins(30)).unwrap().unwrap();
    assert_eq!(
        (s.user, s.csrf_token.as_str(), s.expires_at),
        (alice.clone(), "csrf-1", ms(mins(60)))
    );
    assert!(
        c.session("s1", mins(60)).unwrap().is_none(),
        "expired at its time"
    );
    assert!(c.session("nope", mins(1)).unwrap().is_none());
    // Ending any session also removes the expired ones.
    c.delete_session("none-such", mins(90)).unwrap();
    assert!(c.session("s1", mins(30)).unwrap().is_none());
    assert!(c.session("s2", mins(90)).unwrap().is_some());
    c.delete_session("s2", mins(90)).unwrap();
    assert!(c.session("s2", mins(90)).unwrap().is_none());

    c.add_session("s3", alice.id, "csrf-3", now, mins(120))
        .unwrap();
    assert!(c.set_password("alice", "hash-3").unwrap());
    assert!(
        c.session("s3", mins(1)).unwrap().is_none(),
        "a new password ends sessions"
    );
    assert_eq!(c.user_by_name("alice").unwrap().unwrap().1, "hash-3");
    assert!(!c.set_password("nobody", "hash").unwrap());
    // A new role ends the user's sessions, so none carries more than the user now may.
    c.add_session("s5", alice.id, "csrf-5", now, mins(120))
        .unwrap();
    let operator = Grant {
        role: Role::Operator,
        databases: Databases::parse("app").unwrap(),
    };
    assert!(c.set_grant("alice", &operator).unwrap());
    assert!(c.session("s5", mins(1)).unwrap().is_none());
    assert!(!c.set_grant("nobody", &operator).unwrap());
    c.add_session("s6", alice.id, "csrf-6", now, mins(120))
        .unwrap();
    assert_eq!(
        c.session("s6", mins(1)).unwrap().unwrap().user.grant,
        operator
    );
    c.add_session("s4", bob.id, "csrf-4", now, mins(120))
        .unwrap();
    assert!(c.delete_user("Bob").unwrap());
    assert!(c.session("s4", mins(1)).unwrap().is_none());
    assert!(!c.delete_user("Bob").unwrap());
    assert_eq!(c.user_count().unwrap(), 1);

    let token = |name, digest, grant, expires_at| NewToken {
        name,
        token_sha256: digest,
        grant,
        expires_at,
    };
    c.add_token(&token("ci", "digest-1", &admin, None), now)
        .unwrap();
    assert!(
        c.add_token(&token("ci", "digest-2", &admin, None), now)
            .is_err(),
        "token names are unique"
    );
    assert!(
        c.add_token(&token("other", "digest-1", &admin, None), now)
            .is_err(),
        "token digests are unique"
    );
    c.add_token(
        &token("Backup", "digest-3", &shop_viewer, Some(mins(10))),
        mins(2),
    )
    .unwrap();
    let names = |c: &dyn Shared| -> Vec<(String, Option<DateTime<Utc>>)> {
        c.tokens()
            .unwrap()
            .into_iter()
            .map(|t| (t.name, t.last_used_at))
            .collect()
    };
    assert_eq!(names(c), vec![("Backup".into(), None), ("ci".into(), None)]);
    let backup = &c.tokens().unwrap()[0];
    assert_eq!(
        (backup.created_at, &backup.grant, backup.expires_at),
        (ms(mins(2)), &shop_viewer, Some(ms(mins(10))))
    );
    // An expired token lets nothing in, and its use is not noted.
    let scoped = c.use_token("digest-3", mins(9)).unwrap().unwrap();
    assert_eq!(
        (scoped.name.as_str(), &scoped.grant),
        ("Backup", &shop_viewer)
    );
    assert_eq!(c.use_token("digest-3", mins(10)).unwrap(), None);
    assert_eq!(c.tokens().unwrap()[0].last_used_at, Some(ms(mins(9))));
    let named = |t: Option<TokenGrant>| t.map(|t| t.name);
    let used = now + TimeDelta::microseconds(300_000_777);
    let ci = c.use_token("digest-1", used).unwrap().unwrap();
    assert_eq!((ci.name.as_str(), &ci.grant), ("ci", &admin));
    assert_eq!(names(c)[1], ("ci".into(), Some(ms(used))));
    // Noted at most once a minute.
    c.use_token("digest-1", used + TimeDelta::seconds(30))
        .unwrap();
    assert_eq!(names(c)[1], ("ci".into(), Some(ms(used))));
    let later = used + TimeDelta::seconds(61);
    assert_eq!(
        named(c.use_token("digest-1", later).unwrap()).as_deref(),
        Some("ci")
    );
    assert_eq!(names(c)[1], ("ci".into(), Some(ms(later))));
    assert_eq!(c.use_token("digest-9", used).unwrap(), None);
    assert!(c.revoke_token("ci").unwrap());
    assert!(!c.revoke_token("ci").unwrap());
    assert_eq!(c.use_token("digest-1", used).unwrap(), None);

    // Failed logins, counted per key for every instance; those older than `keep` forgotten.
    let lf = c;
    let keys = |k: &[&str]| -> Vec<String> { k.iter().map(|s| s.to_string()).collect() };
    let (user, addr) = ("user:alice", "addr:192.0.2.1");
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(lf.login_failures_since(&keys(&[user]), now).unwrap(), 0);
    lf.record_login_failure(&keys(&[user, addr]), now, hour)
        .unwrap();
    lf.record_login_failure(&keys(&[user]), mins(1), hour)
        .unwrap();
    assert_eq!(
        lf.login_failures_since(&keys(&[user, addr]), now).unwrap(),
        2
    );
    assert_eq!(lf.login_failures_since(&keys(&[addr]), now).unwrap(), 1);
    assert_eq!(lf.login_failures_since(&keys(&[user]), mins(1)).unwrap(), 1);
    assert_eq!(lf.login_failures_since(&[], now).unwrap(), 0);
    lf.record_login_failure(&keys(&["user:bob"]), mins(90), hour)
        .unwrap();
    assert_eq!(
        lf.login_failures_since(&keys(&[user, addr]), mins(-60))
            .unwrap(),
        0
    );
    assert_eq!(
        lf.login_failures_since(&keys(&["user:bob"]), now).unwrap(),
        1
    );
}

pub(super) fn copy(backup_id: i64, store: &str, uploaded: Option<DateTime<Utc>>) -> Copy {
    Copy {
        backup_id,
        store: store.into(),
        key: format!("app/{backup_id}.db.gz"),
        size_bytes: uploaded.map(|_| 100),
        sha256: uploaded.map(|_| "cd".repeat(32)),
        state: if uploaded.is_some() {
            CopyState::Uploaded
        } else {
            CopyState::Failed
        },
        error: uploaded.is_none().then(|| "timed out".to_string()),
        uploaded_at: uploaded,
        pruned_at: None,
    }
}

pub(super) fn copies_are_replaced_and_failures_counted(h: &dyn Harness) {
    let c = h.catalog();
    let copies = c;
    let (b1, b2) = (
        good(c, "app", "a1.db.gz", 0),
        good(c, "app", "a2.db.gz", 10),
    );
    let b3 = good(c, "main", "m1.sql.gz", 20);
    let (t1, t2, t3) = (
        at(T0) + TimeDelta::microseconds(5_000_100),
        at(T0) + TimeDelta::seconds(60),
        at(T0) + TimeDelta::seconds(90),
    );
    copies.record_copy(&copy(b1, "s3", Some(t1))).unwrap();
    copies.record_copy(&copy(b1, "az", None)).unwrap();
    assert_eq!(copies.failure_counts().unwrap(), vec![("az".into(), 1)]);
    let listed: Vec<(String, CopyState)> = copies
        .copies(b1)
        .unwrap()
        .into_iter()
        .map(|c| (c.store, c.state))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("az".into(), CopyState::Failed),
            ("s3".into(), CopyState::Uploaded)
        ]
    );
    let s3 = &copies.copies(b1).unwrap()[1];
    let key = format!("app/{b1}.db.gz");
    assert_eq!(
        (s3.key.as_str(), s3.size_bytes, s3.uploaded_at),
        (key.as_str(), Some(100), Some(ms(t1)))
    );
    assert_eq!(
        c.get(b1).unwrap().unwrap().copies,
        vec![
            CopySummary {
                store: "az".into(),
                state: CopyState::Failed,
                size_bytes: None,
                sha256: None,
                error: Some("timed out".into()),
                uploaded_at: None,
                pruned_at: None,
            },
            CopySummary {
                store: "s3".into(),
                state: CopyState::Uploaded,
                size_bytes: Some(100),
                sha256: Some("cd".repeat(32)),
                error: None,
                uploaded_at: Some(format_time(&t1)),
                pruned_at: None,
            },
        ]
    );
    // A later try replaces the copy; the failure stays counted.
    copies.record_copy(&copy(b1, "az", Some(t2))).unwrap();
    let az = &copies.copies(b1).unwrap()[0];
    assert_eq!(
        (az.state, az.error.as_deref(), az.uploaded_at),
        (CopyState::Uploaded, None, Some(ms(t2)))
    );
    assert_eq!(copies.failure_counts().unwrap(), vec![("az".into(), 1)]);
    copies.record_copy(&copy(b2, "az", None)).unwrap();
    copies.record_copy(&copy(b2, "s3", Some(t3))).unwrap();
    let pruned = Copy {
        pruned_at: Some(t3),
        ..copy(b1, "s3", Some(t1))
    };
    copies.record_copy(&pruned).unwrap();
    assert_eq!(copies.copies(b1).unwrap()[1].pruned_at, Some(ms(t3)));
    copies.record_copy(&copy(b3, "s3", Some(t1))).unwrap();
    assert_eq!(copies.failure_counts().unwrap(), vec![("az".into(), 2)]);
    assert_eq!(
        copies.last_uploads().unwrap(),
        vec![
            ("app".into(), "az".into(), ms(t2)),
            ("app".into(), "s3".into(), ms(t3)),
            ("main".into(), "s3".into(), ms(t1)),
        ]
    );
    assert!(copies.copies(9999).unwrap().is_empty());
}

pub(super) fn deliveries_and_stale_alerts(h: &dyn Harness) {
    let c = h.catalog();
    let d = c;
    let delivery = |channel: &str, error: Option<&str>| Delivery {
        at: at(T0),
        channel: channel.into(),
        event: EventKind::Failure,
        database: "app".into(),
        backup_id: Some(7),
        error: error.map(str::to_string),
    };
    d.record_delivery(&delivery("webhook https://a", None))
        .unwrap();
    assert!(
        d.failed_deliveries().unwrap().is_empty(),
        "a delivered one keeps no row"
    );
    d.record_delivery(&delivery("webhook https://a", Some("HTTP 500")))
        .unwrap();
    d.record_delivery(&delivery("webhook https://a", Some("HTTP 502")))
        .unwrap();
    d.record_delivery(&delivery("ping https://b", Some("timed out")))
        .unwrap();
    assert_eq!(
        d.failed_deliveries().unwrap(),
        vec![
            ("ping https://b".into(), 1),
            ("webhook https://a".into(), 2)
        ]
    );

    assert!(d.stale_announced().unwrap().is_empty());
    let (t1, t2) = (at(T0), at(T0) + TimeDelta::hours(1));
    d.set_stale_announced("main", Some((Some(t1), t2))).unwrap();
    d.set_stale_announced("app", Some((None, t2))).unwrap();
    assert_eq!(
        d.stale_announced().unwrap(),
        vec![("app".into(), None), ("main".into(), Some(ms(t1)))]
    );
    d.set_stale_announced("main", Some((Some(t2), t2))).unwrap();
    d.set_stale_announced("app", None).unwrap();
    d.set_stale_announced("never", None).unwrap();
    assert_eq!(
        d.stale_announced().unwrap(),
        vec![("main".into(), Some(ms(t2)))]
    );
}

pub(super) fn a_disk_filling_up_is_claimed_once_per_episode(h: &dyn Harness) {
    let c = h.catalog();
    let other = h.open();
    let (t1, t2) = (at(T0), at(T0) + TimeDelta::hours(1));
    assert!(c.claim_disk_alert("web-1:/var/backups", t1).unwrap());
    // Another instance on the same disk, or a restart: already announced.
    assert!(!other.claim_disk_alert("web-1:/var/backups", t2).unwrap());
    assert!(!c.claim_disk_alert("web-1:/var/backups", t2).unwrap());
    // Another disk is its own episode.
    assert!(other.claim_disk_alert("web-2:/var/backups", t2).unwrap());
    // The episode ends; the next one is announced again.
    c.clear_disk_alert("web-1:/var/backups").unwrap();
    c.clear_disk_alert("never-announced").unwrap();
    assert!(other.claim_disk_alert("web-1:/var/backups", t2).unwrap());
    assert!(!c.claim_disk_alert("web-2:/var/backups", t2).unwrap());
}

pub(super) fn two_factor_recovery_codes_pending_logins_and_sessions(h: &dyn Harness) {
    let c = h.catalog();
    let now = at(T0);
    let mins = |m| now + TimeDelta::minutes(m);
    let admin = Grant::everywhere(Role::Admin);
    let alice = c.add_user("alice", "hash", &admin, now).unwrap();
    assert!(!alice.two_factor);
    assert_eq!(c.two_factor(alice.id).unwrap(), None);
    // Enrolling: a secret, not yet enabled; then confirmed.
    c.set_two_factor(alice.id, Some("SECRETBASE32"), false)
        .unwrap();
    let pending = c.two_factor(alice.id).unwrap().unwrap();
    assert_eq!(
        (pending.secret.as_str(), pending.enabled),
        ("SECRETBASE32", false)
    );
    assert!(!c.user_by_name("alice").unwrap().unwrap().0.two_factor);
    c.set_two_factor(alice.id, Some("SECRETBASE32"), true)
        .unwrap();
    assert!(c.user_by_name("alice").unwrap().unwrap().0.two_factor);
    // A step is accepted once, and never an older one.
    assert!(c.accept_totp_step(alice.id, 100).unwrap());
    assert!(!c.accept_totp_step(alice.id, 100).unwrap());
    assert!(!c.accept_totp_step(alice.id, 99).unwrap());
    assert!(c.accept_totp_step(alice.id, 101).unwrap());
    assert_eq!(c.two_factor(alice.id).unwrap().unwrap().last_step, 101);
    // Recovery codes: each works once; new ones replace the old.
    let codes: Vec<String> = (0..10).map(|i| format!("digest-{i}")).collect();
    c.set_recovery_codes(alice.id, &codes).unwrap();
    assert_eq!(c.recovery_codes_left(alice.id).unwrap(), 10);
    assert!(c.use_recovery_code(alice.id, "digest-3", now).unwrap());
    assert!(!c.use_recovery_code(alice.id, "digest-3", now).unwrap());
    assert!(!c.use_recovery_code(alice.id, "digest-x", now).unwrap());
    assert_eq!(c.recovery_codes_left(alice.id).unwrap(), 9);
    c.set_recovery_codes(alice.id, &codes[..2]).unwrap();
    assert_eq!(c.recovery_codes_left(alice.id).unwrap(), 2);
    // Pending logins expire and end.
    c.add_pending_login("p1", alice.id, now, mins(5)).unwrap();
    assert_eq!(
        c.pending_login("p1", mins(4)).unwrap().unwrap().name,
        "alice"
    );
    assert!(c.pending_login("p1", mins(5)).unwrap().is_none());
    c.add_pending_login("p2", alice.id, now, mins(5)).unwrap();
    c.end_pending_login("p2", mins(1)).unwrap();
    assert!(c.pending_login("p2", mins(1)).unwrap().is_none());
    // Removing the secret removes the recovery codes too.
    c.set_two_factor(alice.id, None, true).unwrap();
    assert_eq!(c.two_factor(alice.id).unwrap(), None);
    assert_eq!(c.recovery_codes_left(alice.id).unwrap(), 0);
    assert!(!c.user_by_name("alice").unwrap().unwrap().0.two_factor);
    // Sessions as an admin sees them, and ended by user.
    let bob = c.add_user("bob", "hash", &admin, now).unwrap();
    c.add_session("s1", alice.id, "c", now, mins(60)).unwrap();
    c.add_session("s2", bob.id, "c", mins(1), mins(60)).unwrap();
    c.add_session("s3", bob.id, "c", mins(2), mins(3)).unwrap();
    let seen: Vec<(String, DateTime<Utc>)> = c
        .sessions(mins(10))
        .unwrap()
        .into_iter()
        .map(|s| (s.user, s.created_at))
        .collect();
    assert_eq!(
        seen,
        [("alice".into(), ms(now)), ("bob".into(), ms(mins(1)))]
    );
    assert_eq!(c.end_sessions("bob").unwrap(), 2);
    assert!(c.session("s2", mins(10)).unwrap().is_none());
    assert!(c.session("s1", mins(10)).unwrap().is_some());
}

pub(super) fn single_sign_on_users_and_states_are_used_once(h: &dyn Harness) {
    use dbkeep_model::accounts::OidcLogin;
    let c = h.catalog();
    let now = at(T0);
    let mins = |m| now + TimeDelta::minutes(m);
    let login = OidcLogin {
        verifier: "v".into(),
        nonce: "n".into(),
        next: "/backups".into(),
    };
    c.add_oidc_login("s1", &login, now, mins(5)).unwrap();
    assert_eq!(
        c.take_oidc_login("s1", mins(1)).unwrap(),
        Some(login.clone())
    );
    assert_eq!(
        c.take_oidc_login("s1", mins(1)).unwrap(),
        None,
        "a state is good once"
    );
    c.add_oidc_login("s2", &login, now, mins(5)).unwrap();
    assert_eq!(c.take_oidc_login("s2", mins(5)).unwrap(), None, "expired");
    // A user made by single sign-on: created, then given the grant of each login.
    let viewer = Grant::everywhere(Role::Viewer);
    let alice = c.sign_on_user("alice", &viewer, now).unwrap().unwrap();
    assert_eq!(alice.grant, viewer);
    c.add_session("s", alice.id, "c", now, mins(60)).unwrap();
    let same = c.sign_on_user("alice", &viewer, now).unwrap().unwrap();
    assert_eq!(same.id, alice.id);
    assert!(
        c.session("s", mins(1)).unwrap().is_some(),
        "an unchanged grant keeps sessions"
    );
    let admin = Grant::everywhere(Role::Admin);
    assert_eq!(
        c.sign_on_user("alice", &admin, now).unwrap().unwrap().grant,
        admin
    );
    assert!(
        c.session("s", mins(1)).unwrap().is_none(),
        "a new grant ends sessions"
    );
    let info = c.users().unwrap();
    assert_eq!(
        (info[0].name.as_str(), info[0].source.as_str()),
        ("alice", "oidc")
    );
    // It has no password that could ever match, and a local user's name is not taken over.
    assert_eq!(c.user_by_name("alice").unwrap().unwrap().1, "!");
    c.add_user("bob", "hash", &admin, now).unwrap();
    assert_eq!(c.sign_on_user("bob", &viewer, now).unwrap(), None);
    assert_eq!(c.users().unwrap()[1].source, "local");
}
