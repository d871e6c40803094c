//! Stories of the WAL archive's records: a segment recorded once (the same file again is no
//! change, a different one is named), queued for each destination and sent oldest first, the
//! cluster each archive belongs to, and base backups' places in the log.

use super::harness::Harness;
use super::{T0, at, begin, ms};
use dbkeep_model::vocab::Compression;
use dbkeep_model::wal::{BaseBackup, Lsn, Recorded, Segment};

fn segment(name: &str, sha: &str) -> Segment {
    Segment {
        server: "pg".into(),
        name: name.into(),
        sha256: sha.repeat(64),
        raw_bytes: 16 << 20,
        stored_bytes: 1234,
        compression: Compression::Zstd,
        encrypted: false,
        archived_at: None,
    }
}

pub(super) fn wal_segments_are_recorded_once_and_queued(h: &dyn Harness) {
    let c = h.catalog();
    let dest = ["s3".to_string(), "azure".to_string()];
    let first = segment("000000010000000000000001", "a");
    assert_eq!(c.add_segment(&first, &dest).unwrap(), Recorded::New);
    // Not archived yet: nothing is sent and nothing counts for the RPO.
    assert!(c.wal_queue("pg", "s3").unwrap().is_empty());
    assert_eq!(c.last_archived("pg").unwrap(), None);
    assert_eq!(
        c.add_segment(&first, &dest).unwrap(),
        Recorded::Again { archived: false }
    );
    c.segment_archived("pg", &first.name, at(T0)).unwrap();
    assert_eq!(
        c.add_segment(&first, &dest).unwrap(),
        Recorded::Again { archived: true }
    );
    assert_eq!(
        c.add_segment(&segment(&first.name, "b"), &dest).unwrap(),
        Recorded::Different {
            recorded: "a".repeat(64)
        }
    );
    let second = segment("000000010000000000000002", "c");
    assert_eq!(c.add_segment(&second, &dest).unwrap(), Recorded::New);
    let later = at("2026-12-01T00:01:00Z");
    c.segment_archived("pg", &second.name, later).unwrap();
    assert_eq!(c.last_archived("pg").unwrap(), Some(ms(later)));
    assert_eq!(c.last_archived("other").unwrap(), None);

    let stored = c.segment("pg", &first.name).unwrap().unwrap();
    assert_eq!(
        stored,
        Segment {
            archived_at: Some(ms(at(T0))),
            ..first.clone()
        }
    );
    assert_eq!(c.segment("pg", "000000010000000000000009").unwrap(), None);
    assert_eq!(
        c.wal_queue("pg", "s3").unwrap(),
        [first.name.clone(), second.name.clone()],
        "oldest first"
    );
    c.wal_sent("pg", &first.name, "s3").unwrap();
    assert_eq!(
        c.wal_queue("pg", "s3").unwrap(),
        std::slice::from_ref(&second.name)
    );
    assert_eq!(c.wal_queue("pg", "azure").unwrap().len(), 2);

    c.forget_segments("pg", std::slice::from_ref(&first.name))
        .unwrap();
    let names: Vec<String> = c
        .segments("pg")
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, std::slice::from_ref(&second.name));
    assert_eq!(c.wal_queue("pg", "azure").unwrap(), [second.name]);
}

pub(super) fn archives_belong_to_one_cluster_and_bases_are_kept(h: &dyn Harness) {
    let c = h.catalog();
    assert_eq!(c.server_of_system("7001").unwrap(), None);
    assert_eq!(c.claim_system("pg", "7001").unwrap(), "7001");
    assert_eq!(
        c.claim_system("pg", "7002").unwrap(),
        "7001",
        "the first stays"
    );
    assert_eq!(c.server_of_system("7001").unwrap().as_deref(), Some("pg"));

    let id = begin(c, "pg", "postgres_base_1.tar.zst", 0);
    let base = BaseBackup {
        backup_id: id,
        server: "pg".into(),
        timeline: 1,
        start_lsn: "0/3000028".parse::<Lsn>().unwrap(),
        start_wal: "000000010000000000000003".into(),
        stop_lsn: "1/100".parse::<Lsn>().unwrap(),
        stopped_at: ms(at("2026-12-01T00:00:09Z")),
    };
    c.add_base(&base).unwrap();
    assert_eq!(c.bases("pg").unwrap(), std::slice::from_ref(&base));
    assert_eq!(base.first_segment(), "000000010000000000000003");
    assert!(c.bases("other").unwrap().is_empty());
}
