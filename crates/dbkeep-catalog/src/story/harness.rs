//! What the stories run on: a fresh store per test for each implementation, and more instances
//! on the same store when a story plays several processes.

use std::sync::atomic::{AtomicUsize, Ordering};

use percent_encoding::percent_decode_str;

use crate::postgres::PostgresCatalog;
use crate::postgres_connect;
use crate::sqlite::SqliteCatalog;
use dbkeep_config::config::{Secret, ServerTarget};
use dbkeep_model::accounts::Accounts;
use dbkeep_model::catalog::Catalog;

/// The test server when `DBKEEP_TEST_PG_URL` does not name one.
const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A catalog as the stories use it: the record and the accounts beside it.
pub(crate) trait Shared: Catalog + Accounts {}
impl<T: Catalog + Accounts> Shared for T {}

/// One fresh store under test.
pub(crate) trait Harness {
    /// The instance a story uses.
    fn catalog(&self) -> &dyn Shared;
    /// Another instance on the same store, as another process would open it.
    fn open(&self) -> Box<dyn Shared>;
    /// Runs `sql` on the store behind the catalog's back, as a hand edit would.
    fn tamper(&self, sql: &str) {
        if let Err(e) = self.try_tamper(sql) {
            panic!("{sql}: {e}");
        }
    }
    /// Like [`Harness::tamper`], with the store's refusal as an error.
    fn try_tamper(&self, sql: &str) -> Result<(), String>;
}

/// A SQLite catalog in a temporary folder.
pub(crate) struct Sqlite {
    // Declared first: closed before its folder goes.
    catalog: SqliteCatalog,
    dir: tempfile::TempDir,
}

impl Sqlite {
    pub(crate) fn new() -> Sqlite {
        let dir = tempfile::tempdir().unwrap();
        Sqlite {
            catalog: SqliteCatalog::open(&dir.path().join("catalog.sqlite3")).unwrap(),
            dir,
        }
    }
}

impl Harness for Sqlite {
    fn catalog(&self) -> &dyn Shared {
        &self.catalog
    }

    fn open(&self) -> Box<dyn Shared> {
        Box::new(SqliteCatalog::open(&self.dir.path().join("catalog.sqlite3")).unwrap())
    }

    fn try_tamper(&self, sql: &str) -> Result<(), String> {
        self.catalog
            .conn()
            .execute_batch(sql)
            .map_err(|e| e.to_string())
    }
}

/// A PostgreSQL catalog in a database of its own on the test server.
pub(crate) struct Postgres {
    // Declared first: its connections close before the database is dropped.
    catalog: PostgresCatalog,
    db: TestDatabase,
}

impl Postgres {
    pub(crate) fn new() -> Postgres {
        let db = TestDatabase::create();
        Postgres {
            catalog: db.open().unwrap(),
            db,
        }
    }
}

impl Postgres {
    /// The name of its database.
    pub(crate) fn database(&self) -> &str {
        &self.db.name
    }
}

impl Harness for Postgres {
    fn catalog(&self) -> &dyn Shared {
        &self.catalog
    }

    fn open(&self) -> Box<dyn Shared> {
        Box::new(self.db.open().unwrap())
    }

    fn try_tamper(&self, sql: &str) -> Result<(), String> {
        self.db
            .client()
            .batch_execute(sql)
            .map_err(|e| format!("{e:?}"))
    }
}

/// The test server, as a catalog's target would name it (any password out of the URL).
pub(crate) fn server() -> ServerTarget {
    let text = std::env::var("DBKEEP_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.into());
    let mut url = url::Url::parse(&text)
        .unwrap_or_else(|e| panic!("DBKEEP_TEST_PG_URL `{text}` is not a URL: {e}"));
    let password = url
        .password()
        .map(|p| Secret::new(percent_decode_str(p).decode_utf8_lossy()));
    let _ = url.set_password(None);
    ServerTarget {
        url,
        password,
        password_env: None,
    }
}

/// One connection to `target`, or a failed test saying why.
pub(crate) fn connect(target: &ServerTarget) -> postgres::Client {
    let settings = postgres_connect::settings(target).unwrap();
    postgres_connect::connect(&settings).unwrap_or_else(|e| {
        panic!(
            "the PostgreSQL test server at {} is needed and cannot be used: {e}; start one \
             (scripts/test.sh does) or point DBKEEP_TEST_PG_URL at one",
            target.url
        )
    })
}

/// A database of its own on the test server, dropped with this guard (also when the test
/// panics).
pub(crate) struct TestDatabase {
    /// Where it is, as a catalog's target.
    pub(crate) target: ServerTarget,
    name: String,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl TestDatabase {
    /// Creates an empty database named `dbkeep_story_<pid>_<n>`.
    pub(crate) fn create() -> TestDatabase {
        let admin = server();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let name = format!("dbkeep_story_{}_{n}", std::process::id());
        let mut client = connect(&admin);
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let mut target = admin;
        target.url.set_path(&format!("/{name}"));
        TestDatabase { target, name }
    }

    /// A catalog instance on it.
    pub(crate) fn open(&self) -> dbkeep_model::error::Result<PostgresCatalog> {
        PostgresCatalog::open(&self.target)
    }

    /// A plain connection to it.
    pub(crate) fn client(&self) -> postgres::Client {
        connect(&self.target)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let settings = postgres_connect::settings(&server()).unwrap();
        if let Ok(mut client) = postgres_connect::connect(&settings) {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            if let Err(e) = client.batch_execute(&sql) {
                eprintln!("could not drop test database {}: {e}", self.name);
            }
        }
    }
}
