#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use dbkeep_catalog::sqlite::SqliteCatalog;

struct Fixture {
    dir: tempfile::TempDir,
    config: Config,
    catalog: SqliteCatalog,
}

/// A configuration with a SQLite glob server `lite` over `tenants/*.db` (and `extra`).
fn fixture(extra: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tenants")).unwrap();
    let text = format!(
        "{extra}\n[[servers]]\nname = \"lite\"\nurl = \"sqlite:tenants/*.db\"\nexclude = [\"tmp_*\"]\n"
    );
    let config = Config::parse(&dir.path().join("dbkeep.toml"), &text, &|_| None).unwrap();
    let catalog = SqliteCatalog::open(config.catalog.sqlite_file().unwrap()).unwrap();
    Fixture {
        dir,
        config,
        catalog,
    }
}

impl Fixture {
    fn touch(&self, name: &str) {
        std::fs::write(self.dir.path().join("tenants").join(name), b"").unwrap();
    }
    fn discover(&self) -> Report {
        discover(
            &self.config,
            &self.catalog.discovered().unwrap(),
            Utc::now(),
        )
    }
    /// (database file name, state, name, why) of each line.
    fn lines(report: &Report) -> Vec<(String, &'static str, Option<String>, Option<String>)> {
        report.servers[0]
            .databases
            .iter()
            .map(|l| {
                (
                    Path::new(&l.database)
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                    l.state.as_str(),
                    l.name.clone(),
                    l.why.clone(),
                )
            })
            .collect()
    }
}

#[test]
fn files_are_new_then_known_then_gone_and_each_change_is_recorded_once() {
    let f = fixture("");
    f.touch("acme.db");
    f.touch("tmp_x.db");
    f.touch("acme.db-wal");
    let first = f.discover();
    assert_eq!(
        Fixture::lines(&first),
        [
            ("acme.db".into(), "new", Some("lite-acme".into()), None),
            (
                "tmp_x.db".into(),
                "excluded",
                None,
                Some("matches exclude `tmp_*`".into())
            ),
        ]
    );
    let changes = apply(&first, &f.catalog).unwrap();
    assert_eq!(
        changes,
        [Change::Found {
            name: "lite-acme".into(),
            server: "lite".into()
        }]
    );
    // The same answer again: known, nothing to announce.
    let again = f.discover();
    assert_eq!(Fixture::lines(&again)[0].1, "known");
    assert!(apply(&again, &f.catalog).unwrap().is_empty());
    // The file removed: gone, once.
    std::fs::remove_file(f.dir.path().join("tenants/acme.db")).unwrap();
    let gone = f.discover();
    assert_eq!(
        Fixture::lines(&gone),
        [
            (
                "acme.db".into(),
                "gone",
                Some("lite-acme".into()),
                Some("no longer on the server".into())
            ),
            (
                "tmp_x.db".into(),
                "excluded",
                None,
                Some("matches exclude `tmp_*`".into())
            ),
        ]
    );
    let changes = apply(&gone, &f.catalog).unwrap();
    assert!(matches!(&changes[..], [Change::Gone { name, .. }] if name == "lite-acme"));
    assert!(apply(&f.discover(), &f.catalog).unwrap().is_empty());
    // Back: found again.
    f.touch("acme.db");
    let back = apply(&f.discover(), &f.catalog).unwrap();
    assert!(matches!(&back[..], [Change::Found { .. }]));
    let checks = f.catalog.server_checks().unwrap();
    assert_eq!(
        (checks[0].server.as_str(), checks[0].error.as_deref()),
        ("lite", None)
    );
}

#[test]
fn a_folder_that_is_not_there_is_a_server_that_does_not_answer_not_every_file_gone() {
    let f = fixture("");
    f.touch("acme.db");
    apply(&f.discover(), &f.catalog).unwrap();
    std::fs::remove_dir_all(f.dir.path().join("tenants")).unwrap();
    let down = f.discover();
    let server = &down.servers[0];
    assert!(
        server.error.as_deref().unwrap().contains("does not exist"),
        "{server:?}"
    );
    assert_eq!(Fixture::lines(&down)[0].1, "unreachable");
    assert!(apply(&down, &f.catalog).unwrap().is_empty());
    assert_eq!(
        f.catalog.discovered().unwrap()[0].state,
        DiscoveryState::Known
    );
    let checks = f.catalog.server_checks().unwrap();
    assert!(checks[0].error.is_some());
}

#[test]
fn an_explicit_entry_wins_and_a_taken_name_is_refused_naming_both() {
    let f = fixture(
        "[[databases]]\nname = \"mine\"\nurl = \"sqlite:tenants/acme.db\"\n\
         [[databases]]\nname = \"lite-shop\"\nurl = \"sqlite:elsewhere.db\"\n",
    );
    f.touch("acme.db");
    f.touch("shop.db");
    f.touch("a b.db");
    let lines = Fixture::lines(&f.discover());
    assert_eq!(
        lines,
        [
            ("a b.db".into(), "excluded", None, Some("its name would be `lite-a b`, which is not a safe folder name (1 to 64 letters, digits, `-` or `_`); exclude it, or back it up with a [[databases]] entry of its own".into())),
            ("acme.db".into(), "excluded", None, Some("backed up as the [[databases]] entry `mine`".into())),
            ("shop.db".into(), "excluded", None, Some("its name `lite-shop` is taken by the [[databases]] entry `lite-shop` (another database): rename that entry, or exclude this one".into())),
        ]
    );
}
