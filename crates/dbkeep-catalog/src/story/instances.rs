//! Stories of the instances sharing a catalog: leases (one holder at a time, taken over when
//! expired or when its process is gone) and heartbeats.

use std::sync::Barrier;
use std::time::Duration;

use super::harness::{Harness, Shared};
use super::{T0, at, ms};
use dbkeep_model::instances::Instance;
use dbkeep_model::instances::host_name;
use dbkeep_model::leases::Lease;

pub(super) fn elsewhere(name: &str, pid: u32) -> Instance {
    Instance {
        name: name.into(),
        host: "another-machine".into(),
        pid,
    }
}

/// An instance of this machine whose process is gone.
fn gone(name: &str) -> Instance {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    Instance {
        name: name.into(),
        host: host_name(),
        pid,
    }
}

pub(super) fn leases_are_held_by_one_instance_at_a_time(h: &dyn Harness) {
    let c = h.catalog();
    let l = c;
    let (a, b) = (elsewhere("a", 1), elsewhere("b", 2));
    let minute = Duration::from_secs(60);
    assert!(l.lease("backup:app").unwrap().is_none());
    assert!(l.acquire("backup:app", &a, minute).unwrap());
    let Lease {
        holder,
        run,
        acquired_at,
        expires_at,
        live,
    } = l.lease("backup:app").unwrap().unwrap();
    assert_eq!((holder.as_str(), run, live), ("a", None, true));
    let held = (expires_at - acquired_at).num_milliseconds();
    assert!((59_000..=61_000).contains(&held), "held for {held} ms");
    assert!(
        !l.acquire("backup:app", &b, minute).unwrap(),
        "held by another"
    );
    assert!(
        l.acquire("backup:app", &a, minute).unwrap(),
        "its holder takes it again"
    );
    l.set_run("backup:app", "a", 7).unwrap();
    l.set_run("backup:app", "b", 8).unwrap();
    assert_eq!(l.lease("backup:app").unwrap().unwrap().run, Some(7));
    assert!(!l.renew("backup:app", "b", minute).unwrap());
    assert!(l.renew("backup:app", "a", minute).unwrap());
    l.release("backup:app", "b").unwrap();
    assert!(
        l.lease("backup:app").unwrap().is_some(),
        "only its holder releases it"
    );
    l.release("backup:app", "a").unwrap();
    assert!(l.lease("backup:app").unwrap().is_none());
    assert!(!l.renew("backup:app", "a", minute).unwrap());

    // An expired lease is taken over, as is one of a process of this machine that is gone.
    assert!(l.acquire("backup:app", &b, Duration::ZERO).unwrap());
    assert!(!l.lease("backup:app").unwrap().unwrap().live);
    assert!(l.acquire("backup:app", &a, minute).unwrap());
    let lease = l.lease("backup:app").unwrap().unwrap();
    assert_eq!(
        (lease.holder.as_str(), lease.run, lease.live),
        ("a", None, true)
    );
    assert!(l.acquire("backup:main", &gone("gone"), minute).unwrap());
    assert!(!l.lease("backup:main").unwrap().unwrap().live);
    assert!(l.acquire("backup:main", &a, minute).unwrap());

    // Instances asking at once for a free resource: exactly one gets it.
    let others: Vec<Box<dyn Shared>> = (0..4).map(|_| h.open()).collect();
    let barrier = Barrier::new(others.len());
    let won = std::thread::scope(|s| {
        let runs: Vec<_> = others
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let barrier = &barrier;
                s.spawn(move || {
                    let me = elsewhere(&format!("racer-{i}"), 100 + i as u32);
                    barrier.wait();
                    o.acquire("backup:race", &me, minute).unwrap()
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap())
            .filter(|won| *won)
            .count()
    });
    assert_eq!(won, 1);
}

pub(super) fn instances_heartbeat_and_depart(h: &dyn Harness) {
    let c = h.catalog();
    let i = c;
    let (minute, day) = (Duration::from_secs(60), Duration::from_secs(86_400));
    assert!(i.instances(minute, day).unwrap().is_empty());
    i.heartbeat(&elsewhere("a", 7), "0.1.0", at(T0), &["app".into()])
        .unwrap();
    i.heartbeat(&elsewhere("B", 8), "0.2.0", at(T0), &[])
        .unwrap();
    let listed = i.instances(minute, day).unwrap();
    let names: Vec<&str> = listed.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["B", "a"], "by name, byte-wise");
    let a = &listed[1];
    assert_eq!(
        (a.host.as_str(), a.pid, a.version.as_str()),
        ("another-machine", 7, "0.1.0")
    );
    assert_eq!(
        (a.started_at, a.running.clone(), a.alive),
        (ms(at(T0)), vec!["app".to_string()], true)
    );
    assert!(a.heartbeat_at > a.started_at, "by the catalog's clock");
    // A heartbeat replaces the last one.
    i.heartbeat(&elsewhere("a", 9), "0.1.1", at(T0), &[])
        .unwrap();
    let a = &i.instances(minute, day).unwrap()[1];
    assert_eq!(
        (a.pid, a.version.as_str(), a.running.len()),
        (9, "0.1.1", 0)
    );
    assert!(
        i.instances(Duration::ZERO, day)
            .unwrap()
            .iter()
            .all(|r| !r.alive)
    );
    assert!(
        i.instances(Duration::ZERO, Duration::ZERO)
            .unwrap()
            .is_empty()
    );
    i.heartbeat(&gone("gone"), "0.1.0", at(T0), &[]).unwrap();
    let listed = i.instances(minute, day).unwrap();
    assert!(
        !listed.iter().find(|r| r.name == "gone").unwrap().alive,
        "its process is gone"
    );
    i.depart("a").unwrap();
    i.depart("nobody").unwrap();
    let names: Vec<String> = i
        .instances(minute, day)
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, vec!["B".to_string(), "gone".to_string()]);
}
