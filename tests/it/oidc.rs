//! Single sign-on against a real OpenID Connect provider (npm oidc-provider, installed by the
//! test script) in headless Chromium: roles from the groups claim, a user without a group
//! refused, a replayed state refused, tampered, mis-addressed, wrongly-nonced and expired ID
//! tokens refused, and the provider's key rotation followed.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fantoccini::{Client, Locator};

use crate::browser::{
    Guard, Session, free_port, require_browser, serve_with, submit, text_of, wait_for_http,
    wait_for_path,
};
use crate::common::*;

const SECRET: &str = "oidc-test-client-secret";

/// The provider on `port`, signing with a new key named `kid`.
fn provider(port: u16, web_port: u16, kid: &str, logs: &Path) -> Guard {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/oidc-provider");
    assert!(
        dir.join("node_modules/oidc-provider").is_dir(),
        "oidc-provider is not installed in {}: run the tests through scripts/test.sh",
        dir.display()
    );
    let mut cmd = Command::new("node");
    cmd.arg(root.join("tests/it/support/oidc_provider.mjs"))
        .env("PORT", port.to_string())
        .env("OIDC_PROVIDER_DIR", &dir)
        .env("OIDC_CLIENT_SECRET", SECRET)
        .env(
            "OIDC_REDIRECT",
            format!("http://127.0.0.1:{web_port}/login/oidc/callback"),
        )
        .env("OIDC_KID", kid)
        .env(
            "OIDC_ACCOUNTS",
            r#"{"alice": ["dbkeep-admins", "staff"], "bob": ["dbkeep-viewers"], "eve": ["staff"]}"#,
        );
    let mut guard = Guard::spawn("oidc-provider", cmd, logs);
    wait_for_http(&mut guard, port, "/.well-known/openid-configuration");
    guard
}

/// Sets the provider's token mode ("" for good tokens).
fn mode(port: u16, set: &str) {
    let got = crate::browser::http_status(port, &format!("/test/mode?set={set}"));
    assert_eq!(got, Some(200), "setting the provider's mode {set:?}");
}

/// Logs in as `who` through the provider from dbkeep's login page, and waits until the
/// browser is back on dbkeep (at any page).
async fn sign_on(client: &Client, base: &str, provider_port: u16, who: &str) {
    client
        .goto(&format!("{base}/login"))
        .await
        .expect("open /login");
    client
        .find(Locator::LinkText("Log in with single sign-on"))
        .await
        .expect("the single sign-on link")
        .click()
        .await
        .expect("click single sign-on");
    let provider = format!("127.0.0.1:{provider_port}");
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let url = client.current_url().await.expect("current URL");
        let at = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port().unwrap_or(80)
        );
        if at != provider {
            return;
        }
        // The provider's own pages: its login form, then its consent.
        if let Ok(login) = client.find(Locator::Css("input[name=login]")).await {
            login.send_keys(who).await.expect("type the login");
            if let Ok(pw) = client.find(Locator::Css("input[name=password]")).await {
                pw.send_keys("any password").await.expect("type a password");
            }
        }
        if let Ok(button) = client.find(Locator::Css("button[type=submit]")).await {
            let _ = button.click().await;
        }
    }
    panic!("the browser never came back from the provider");
}

fn audit_details(sandbox: &Sandbox) -> String {
    let run = sandbox.run(&["audit", "--action", "login", "--limit", "100"]);
    run.assert_success();
    run.stdout
}

async fn scenario(client: Client, base: String, provider_port: u16) {
    // alice's groups make her an admin: she lands on the overview, logged in.
    sign_on(&client, &base, provider_port, "alice").await;
    wait_for_path(&client, "/", Duration::from_secs(10)).await;
    assert_eq!(text_of(&client, "header .logout a").await, "alice");
    client
        .goto(&format!("{base}/users"))
        .await
        .expect("open /users");
    let users = text_of(&client, "table.users").await;
    assert!(users.contains("alice single sign-on admin"), "{users}");
    assert!(users.contains("admin password admin"), "{users}");
    submit(&client, "form.logout", &[]).await;
    wait_for_path(&client, "/login", Duration::from_secs(10)).await;

    // bob is a viewer; eve has no group with a role and is refused. (The provider's own
    // session cookie is on the same host: it goes with dbkeep's.)
    client
        .delete_all_cookies()
        .await
        .expect("forget the provider's session");
    sign_on(&client, &base, provider_port, "bob").await;
    wait_for_path(&client, "/", Duration::from_secs(10)).await;
    client
        .goto(&format!("{base}/users"))
        .await
        .expect("open /users");
    assert!(
        text_of(&client, "body")
            .await
            .contains("the viewer role may not do this")
    );
    client.goto(&format!("{base}/")).await.expect("open /");
    submit(&client, "form.logout", &[]).await;
    wait_for_path(&client, "/login", Duration::from_secs(10)).await;
    client
        .delete_all_cookies()
        .await
        .expect("forget the provider's session");
    sign_on(&client, &base, provider_port, "eve").await;
    assert!(
        text_of(&client, "p.error")
            .await
            .contains("none of your groups"),
        "eve was not refused"
    );

    // Bad ID tokens: each refused, and the login page says so.
    for bad in ["tamper", "audience", "nonce", "expired"] {
        mode(provider_port, bad);
        client
            .delete_all_cookies()
            .await
            .expect("forget the provider's session");
        sign_on(&client, &base, provider_port, "alice").await;
        let error = text_of(&client, "p.error").await;
        assert!(error.contains("was refused"), "{bad}: {error}");
    }
    mode(provider_port, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_sign_on_through_a_real_provider_in_a_real_browser() {
    let browser = require_browser();
    let logs = tempfile::tempdir().expect("temp dir for logs");
    let (web_port, provider_port) = (free_port(), free_port());
    let mut idp = provider(provider_port, web_port, "key-1", logs.path());
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config(&format!(
        "timezone = \"UTC\"\nlisten = \"127.0.0.1:{web_port}\"\npublic_url = \"http://127.0.0.1:{web_port}/\"\n\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n\n\
         [auth]\nlocal_login = false\nbreak_glass = \"admin\"\n\
         [auth.oidc]\nissuer = \"http://127.0.0.1:{provider_port}\"\nclient_id = \"dbkeep\"\n\
         client_secret_env = \"DBKEEP_OIDC_SECRET\"\nscopes = [\"openid\", \"profile\", \"groups\"]\n\
         [[auth.oidc.groups]]\nname = \"dbkeep-viewers\"\nrole = \"viewer\"\n\
         [[auth.oidc.groups]]\nname = \"dbkeep-admins\"\nrole = \"admin\"\n"
    ));
    let _serve = serve_with(
        &sandbox,
        logs.path(),
        web_port,
        &[("DBKEEP_OIDC_SECRET", SECRET)],
    );
    let session = Session::start(&browser, logs.path()).await;
    let client = session.client.clone();
    let base = format!("http://127.0.0.1:{web_port}");
    let outcome = {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move { scenario(client, base, provider_port).await }).await
    };
    if let Err(e) = outcome {
        let _ = client.close().await;
        match e.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(e) => panic!("browser scenario did not finish: {e}"),
        }
    }

    // The provider rotates its key: dbkeep fetches the new one and the login works.
    drop(idp);
    idp = provider(provider_port, web_port, "key-2", logs.path());
    client
        .delete_all_cookies()
        .await
        .expect("forget the provider's session");
    sign_on(&client, &base, provider_port, "alice").await;
    wait_for_path(&client, "/", Duration::from_secs(10)).await;
    let _ = client.close().await;
    drop(idp);

    // A state is good once: the first callback with it is checked (its made-up code then
    // fails at the provider), the second is refused before anything is asked.
    let started = raw_get(web_port, "/login/oidc", None);
    let state = between(&started, "&state=", "&");
    let cookie = format!("dbkeep_oidc={state}");
    let callback = format!("/login/oidc/callback?code=made-up&state={state}");
    for _ in 0..2 {
        let answer = raw_get(web_port, &callback, Some(&cookie));
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    }
    // And a state from another browser (no cookie) is refused.
    let answer = raw_get(web_port, &callback, None);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let details = audit_details(&sandbox);
    for want in [
        "the code was not exchanged",
        "the state is unknown, used already or expired",
        "the state is not this browser's",
    ] {
        assert!(details.contains(want), "{want}:\n{details}");
    }
    for want in [
        "single sign-on as admin of all databases (groups: dbkeep-admins, staff)",
        "single sign-on as viewer of all databases (groups: dbkeep-viewers)",
        "none of the groups [staff] has a role",
        "signature",
        "audience",
        "nonce",
        "expired",
    ] {
        assert!(details.contains(want), "{want}:\n{details}");
    }
    let users = sandbox.run(&["user", "list"]);
    assert!(users.stdout.contains("alice  admin"), "{}", users.stdout);
    assert!(users.stdout.contains("bob  viewer"), "{}", users.stdout);
}

/// The text between `start` and the next `end` (or the end of the line) in `text`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let at = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {text}"))
        + start.len();
    text[at..]
        .split(|c: char| end.contains(c) || c == '\r' || c == '\n')
        .next()
        .unwrap()
}

/// A GET of `path` on 127.0.0.1:`port` with `cookie`: the answer's status line and headers.
fn raw_get(port: u16, path: &str, cookie: Option<&str>) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let cookie = cookie.map_or_else(String::new, |c| format!("Cookie: {c}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{cookie}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[tokio::test]
async fn password_logins_can_be_turned_off_but_for_the_break_glass_admin() {
    let app = crate::web::App::start_with(
        "public_url = \"http://127.0.0.1:7878/\"\n\
         auth = { local_login = false, break_glass = \"admin\", oidc = { issuer = \"http://127.0.0.1:9\", \
         client_id = \"dbkeep\", groups = [{ name = \"ops\", role = \"operator\" }] } }",
    )
    .await;
    app.add_user(
        "carol",
        dbkeep::accounts::Grant::everywhere(dbkeep::accounts::Role::Admin),
    );
    let (status, cookie) = app.try_login("carol", "correct horse battery").await;
    assert_eq!((status, cookie), (axum::http::StatusCode::FORBIDDEN, None));
    let (status, cookie) = app.try_login("admin", "correct horse battery").await;
    assert_eq!(status, axum::http::StatusCode::SEE_OTHER);
    assert!(cookie.is_some());
    let page = app.get("/login", &crate::web::Auth::None).await.text();
    assert!(page.contains("Log in with single sign-on"), "{page}");
    let refused = app
        .catalog()
        .audit(&dbkeep::audit::Query {
            action: Some(dbkeep::audit::Action::Login),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert!(
        refused.iter().any(
            |r| r.entry.target == "carol" && r.entry.outcome == dbkeep::audit::Outcome::Refused
        )
    );
    app.stop().await;
}
