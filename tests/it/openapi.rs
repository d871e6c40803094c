//! The JSON API against its own OpenAPI document, on a real `dbkeep serve`:
//! the document is checked structurally (version, references, every path
//! served), then Schemathesis generates requests from it and checks the
//! responses (no server errors, bodies that match the documented schemas).
//!
//! Needs the `schemathesis` command: `scripts/test.sh` installs it into a
//! virtualenv and exports `DBKEEP_TEST_SCHEMATHESIS`. Without it the test
//! fails (it never skips).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::http::*;

/// Where `scripts/test.sh` puts the virtualenv, relative to the crate.
const DEFAULT_VENV_BIN: &str = "target/test-venv/bin/schemathesis";

/// Generated test cases per API operation and phase: enough to cover every
/// parameter, few enough to finish in well under a minute.
const MAX_EXAMPLES: &str = "50";

/// Fixed so that a failure can be reproduced with the same command.
const SEED: &str = "20240601";

/// The longest a Schemathesis run may take before the test gives up.
const SCHEMATHESIS_DEADLINE: Duration = Duration::from_secs(180);

/// Finds the `schemathesis` command or fails the test with a hint.
#[track_caller]
fn require_schemathesis() -> PathBuf {
    let (path, source) = match std::env::var("DBKEEP_TEST_SCHEMATHESIS") {
        Ok(v) if !v.is_empty() => (PathBuf::from(v), "DBKEEP_TEST_SCHEMATHESIS".to_string()),
        _ => (
            Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_VENV_BIN),
            format!("the default location ({DEFAULT_VENV_BIN}; DBKEEP_TEST_SCHEMATHESIS is unset)"),
        ),
    };
    let works = Command::new(&path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        works,
        "schemathesis not found or not working at {} (from {source}).\n\
         Run the tests with scripts/test.sh, which installs it into a virtualenv, \
         or point DBKEEP_TEST_SCHEMATHESIS at a schemathesis 4.x binary.",
        path.display()
    );
    path
}

/// A running `dbkeep serve` with a SQLite database, a few backups and an API
/// token; killed on drop (its log is printed when the test is failing).
struct Api {
    // Stopped before its sandbox is removed.
    server: Server,
    sandbox: Sandbox,
    token: String,
}

const ADMIN_PASSWORD: &str = "openapi test password";

impl Api {
    fn start() -> Api {
        let sandbox = Sandbox::new();
        create_sample_sqlite(&sandbox.path().join("app.db"));
        create_sample_sqlite(&sandbox.path().join("other.db"));
        let port = free_port();
        // Schedules that never fire during a test: every backup is made on purpose.
        sandbox.write_config(&format!(
            "timezone = \"UTC\"\n\
             listen = \"127.0.0.1:{port}\"\n\
             [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n\
             [[databases]]\nname = \"other\"\nurl = \"sqlite:other.db\"\nschedules = [\"0 0 1 1 *\"]\n"
        ));
        for db in ["app", "app", "app", "other"] {
            sandbox.run(&["backup", "--database", db]).assert_success();
        }
        let run = sandbox.run(&["token", "create", "openapi-test"]);
        run.assert_success();
        let token = run
            .stdout
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string();
        assert!(!token.is_empty(), "no token printed\n{run:?}");

        let server = Server::start(
            &sandbox,
            port,
            &[("DBKEEP_ADMIN_PASSWORD", ADMIN_PASSWORD), ("NO_COLOR", "1")],
        );
        Api {
            server,
            sandbox,
            token,
        }
    }

    #[track_caller]
    fn get(&self, path: &str) -> Response {
        http_get(self.server.port, path, Some(&self.token))
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.server.log()))
    }

    fn openapi_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/openapi.json", self.server.port)
    }
}

/// Every `$ref` in `value`, with the JSON pointer of where it occurs.
fn collect_refs(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.push((
                        at.to_string(),
                        v.as_str().unwrap_or("<not a string>").to_string(),
                    ));
                } else {
                    let key = k.replace('~', "~0").replace('/', "~1");
                    collect_refs(v, &format!("{at}/{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_refs(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// `{name}` segments of an OpenAPI path template.
fn template_params(path: &str) -> BTreeSet<String> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_string)
        .collect()
}

/// Fields of a path item that are not operations.
const PATH_ITEM_FIELDS: &[&str] = &["$ref", "summary", "description", "servers", "parameters"];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[test]
fn openapi_document_is_valid_and_every_path_is_served() {
    let api = Api::start();

    // Behind the login like the rest of the API.
    let anonymous =
        http_get(api.server.port, "/api/v1/openapi.json", None).expect("GET openapi.json");
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());

    let resp = api.get("/api/v1/openapi.json");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        resp.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "content-type: {:?}",
        resp.header("content-type")
    );
    let doc = resp.json("openapi.json");

    assert_eq!(doc["openapi"], "3.0.3", "openapi version");
    assert!(doc["info"]["title"].is_string(), "info.title");
    assert!(doc["info"]["version"].is_string(), "info.version");
    let base = doc["servers"][0]["url"]
        .as_str()
        .expect("servers[0].url is a string");
    assert_eq!(base, "/api/v1", "servers[0].url");

    // Every reference resolves inside the document.
    let mut refs = Vec::new();
    collect_refs(&doc, "", &mut refs);
    assert!(
        !refs.is_empty(),
        "no $ref at all: is the document complete?"
    );
    for (at, target) in &refs {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at}: $ref {target:?} is not local to the document"));
        assert!(
            doc.pointer(pointer).is_some(),
            "{at}: $ref {target:?} does not resolve"
        );
    }

    let paths = doc["paths"].as_object().expect("paths is an object");
    assert!(!paths.is_empty(), "no paths");
    let mut operation_ids = BTreeSet::new();
    let mut served = Vec::new();
    for (path, item) in paths {
        assert!(path.starts_with('/'), "path {path:?} does not start with /");
        let item = item
            .as_object()
            .unwrap_or_else(|| panic!("{path}: not an object"));
        let wanted = template_params(path);
        for (method, op) in item {
            assert!(
                METHODS.contains(&method.as_str()) || PATH_ITEM_FIELDS.contains(&method.as_str()),
                "{path}: unknown key {method:?}"
            );
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(
                operation_ids.insert(id.to_string()),
                "duplicate operationId {id}"
            );
            let responses = op["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path}: no responses"));
            assert!(!responses.is_empty(), "{method} {path}: no responses");
            for code in responses.keys() {
                assert!(
                    code == "default" || (code.len() == 3 && code.parse::<u16>().is_ok()),
                    "{method} {path}: bad response code {code:?}"
                );
            }
            // Path template and path parameters agree.
            // Path parameters: those of the path item and those of the operation.
            let declared: BTreeSet<String> = [item.get("parameters"), op.get("parameters")]
                .into_iter()
                .flatten()
                .filter_map(Value::as_array)
                .flatten()
                .filter(|p| p["in"] == "path")
                .map(|p| {
                    assert_eq!(
                        p["required"], true,
                        "{method} {path}: path parameter not required"
                    );
                    p["name"].as_str().unwrap_or_default().to_string()
                })
                .collect();
            assert_eq!(declared, wanted, "{method} {path}: path parameters");

            if method == "get" && wanted.is_empty() {
                let url = format!("{base}{path}");
                let resp = api.get(&url);
                assert!(
                    resp.status != 404 && resp.status < 500,
                    "GET {url} answered {}: {}",
                    resp.status,
                    resp.text()
                );
                assert!(
                    responses.contains_key(&resp.status.to_string()),
                    "GET {url} answered {}, which the document does not list",
                    resp.status
                );
                let anonymous = http_get(api.server.port, &url, None).expect("anonymous GET");
                assert_eq!(anonymous.status, 401, "GET {url} without a token");
                assert!(
                    anonymous.json("401 body")["error"].is_string(),
                    "GET {url} without a token: {}",
                    anonymous.text()
                );
                served.push(url);
            }
        }
    }
    for op in [
        "listBackups",
        "startBackup",
        "getBackup",
        "downloadBackup",
        "listDatabases",
    ] {
        assert!(operation_ids.contains(op), "operation {op} is missing");
    }
    assert!(
        served.iter().any(|u| u == "/api/v1/backups"),
        "GET /backups was not checked: {served:?}"
    );

    // The seeded backups are listed, so the API is really reading the catalog.
    let listed = api.get("/api/v1/backups").json("backups");
    assert_eq!(listed.as_array().map(Vec::len), Some(4), "{listed:#}");
}

#[test]
fn schemathesis_finds_no_violation_of_the_document() {
    let schemathesis = require_schemathesis();
    let api = Api::start();
    let report = api.sandbox.path().join("schemathesis.out");
    let args: Vec<String> = vec![
        "--no-color".into(),
        "run".into(),
        api.openapi_url(),
        "--header".into(),
        format!("Authorization: Bearer {}", api.token),
        "--checks".into(),
        "all".into(),
        "--max-examples".into(),
        MAX_EXAMPLES.into(),
        "--seed".into(),
        SEED.into(),
        // One worker: on Python 3.11, parallel workers can trip a CPython bug in
        // `ast.parse` from several threads ("AST constructor recursion depth
        // mismatch"), failing the run with a runtime error of Schemathesis itself.
        "--workers".into(),
        "1".into(),
        "--request-timeout".into(),
        "20".into(),
        "--generation-database".into(),
        "none".into(),
    ];
    let start = Instant::now();
    let mut child = Command::new(&schemathesis)
        .args(&args)
        // Its own files (if any) stay in the sandbox; no config from the checkout.
        .current_dir(api.sandbox.path())
        .env("NO_COLOR", "1")
        .env("COLUMNS", "120")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&report).expect("create report"))
        .stderr(Stdio::from(
            fs::File::options()
                .append(true)
                .open(&report)
                .expect("open report"),
        ))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", schemathesis.display()));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for schemathesis") {
            break status;
        }
        if start.elapsed() > SCHEMATHESIS_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "schemathesis did not finish within {SCHEMATHESIS_DEADLINE:?}\n{}",
                fs::read_to_string(&report).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = fs::read_to_string(&report).unwrap_or_default();
    let shown: Vec<&str> = args
        .iter()
        .map(|a| {
            if a.starts_with("Authorization:") {
                "'Authorization: Bearer TOKEN'"
            } else {
                a.as_str()
            }
        })
        .collect();
    assert_eq!(
        status.code(),
        Some(0),
        "schemathesis reported problems (after {:.1?}); command: schemathesis {}\n{output}",
        start.elapsed(),
        shown.join(" ")
    );
    assert!(
        output.contains("passed"),
        "schemathesis ran no test case?\n{output}"
    );
}
