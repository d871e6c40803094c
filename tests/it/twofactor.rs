//! Two-factor login: enrolment with a confirmation code, the login's second step (a code is
//! never accepted twice), recovery codes that each work once, `require_2fa`, and wrong codes
//! throttled like wrong passwords.

use axum::http::StatusCode;
use dbkeep::accounts::{Grant, Role};
use dbkeep::audit::{Action, Query};
use dbkeep::twofactor::code_at;

use crate::web::{App, Auth, hidden_csrf};

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The text between `start` and the next `end` in `html`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let at = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {html}"))
        + start.len();
    html[at..].split(end).next().unwrap()
}

/// Logs in with the password; the pending cookie of the second step (a redirect to it).
async fn password_step(app: &App, user: &str) -> String {
    let form = app.get("/login", &Auth::None).await;
    let csrf = form.cookie("dbkeep_login_csrf").unwrap();
    let body =
        format!("username={user}&password=correct+horse+battery&csrf_token={csrf}&next=/backups");
    let reply = app.post_form("/login", &Auth::LoginCsrf(csrf), &body).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(
        reply.location().starts_with("/login/2fa?next="),
        "{}",
        reply.location()
    );
    assert!(
        reply.cookie("dbkeep_session").is_none(),
        "a session before the second factor"
    );
    reply.cookie("dbkeep_2fa").expect("a pending login cookie")
}

/// The second step with `code`: the status, the session cookie and the page.
async fn code_step(app: &App, pending: &str, code: &str) -> (StatusCode, Option<String>, String) {
    let form = app.get("/login/2fa?next=/backups", &Auth::None).await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = form.cookie("dbkeep_login_csrf").unwrap();
    assert_eq!(hidden_csrf(&form.text()), csrf);
    let body = format!(
        "code={}&csrf_token={csrf}&next=/backups",
        code.replace(' ', "+")
    );
    let auth = Auth::LoginCsrf(format!("{csrf}; dbkeep_2fa={pending}"));
    let reply = app.post_form("/login/2fa", &auth, &body).await;
    if reply.status == StatusCode::SEE_OTHER {
        assert_eq!(reply.location(), "/backups");
    }
    (reply.status, reply.cookie("dbkeep_session"), reply.text())
}

#[tokio::test]
async fn enrolment_login_recovery_codes_and_throttling() {
    let app = App::start_with("auth = { require_2fa = \"admins\" }").await;
    app.add_user("viewer", Grant::everywhere(Role::Viewer));
    // An admin without a second factor is sent to set it up, and may do nothing else.
    let (status, cookie) = app.try_login("admin", "correct horse battery").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let session = Auth::Session(cookie.unwrap(), String::new());
    let csrf = hidden_csrf(&app.get("/account", &session).await.text());
    let admin = match session {
        Auth::Session(cookie, _) => Auth::Session(cookie, csrf),
        other => other,
    };
    let home = app.get("/", &admin).await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location(), "/account");
    let refused = app
        .post_json("/api/v1/backups", &admin, r#"{"database": "app"}"#)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
    assert!(refused.text().contains("two-factor login is required"));
    // A viewer is not covered by "admins".
    let viewer = app.login_as("viewer").await;
    assert_eq!(app.get("/", &viewer).await.status, StatusCode::OK);

    // Enrolment: a QR code and the secret; a wrong code is refused; the right one turns it
    // on and shows ten recovery codes once.
    let account = app.get("/account", &admin).await;
    assert_eq!(account.status, StatusCode::OK);
    let csrf = hidden_csrf(&account.text());
    let started = app
        .post_form("/account/2fa/start", &admin, &format!("csrf_token={csrf}"))
        .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.text());
    let page = started.text();
    assert!(page.contains("<svg"), "no QR code: {page}");
    let secret = between(&page, "<code class=\"secret\">", "<").to_string();
    let wrong = app
        .post_form(
            "/account/2fa/confirm",
            &admin,
            &format!("csrf_token={csrf}&code=000000"),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong.text().contains(&secret),
        "the same secret is shown again"
    );
    let code = code_at(&secret, unix_now()).unwrap();
    let on = app
        .post_form(
            "/account/2fa/confirm",
            &admin,
            &format!("csrf_token={csrf}&code={code}"),
        )
        .await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.text());
    let codes: Vec<String> = on
        .text()
        .split("<li><code>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10, "{}", on.text());
    assert!(!app.get("/account", &admin).await.text().contains(&codes[0]));

    // The login's second step: the code just used is refused (never twice), the next accepted.
    let pending = password_step(&app, "admin").await;
    let (status, session, _) = code_step(&app, &pending, &code).await;
    assert_eq!((status, session), (StatusCode::UNAUTHORIZED, None));
    let next = code_at(&secret, unix_now() + 30).unwrap();
    let (status, session, page) = code_step(&app, &pending, &next).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let totp_session = Auth::Session(session.unwrap(), String::new());
    assert_eq!(app.get("/", &totp_session).await.status, StatusCode::OK);
    // The pending login is used up.
    let (status, _, page) = code_step(&app, &pending, &next).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("expired"), "{page}");

    // A recovery code works once, however it is typed.
    let pending = password_step(&app, "admin").await;
    let typed = codes[3].to_uppercase().replace('-', " ");
    let (status, session, _) = code_step(&app, &pending, &typed).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(session.is_some());
    let pending = password_step(&app, "admin").await;
    let (status, _, _) = code_step(&app, &pending, &codes[3]).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a recovery code worked twice"
    );

    // Wrong codes are throttled with the failed logins: five, then 429 even for a right one.
    for _ in 0..3 {
        let (status, _, _) = code_step(&app, &pending, "123456").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let right = code_at(&secret, unix_now() + 60).unwrap();
    let (status, session, _) = code_step(&app, &pending, &right).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(session.is_none());

    // Required for admins: it cannot be turned off.
    let csrf = hidden_csrf(&app.get("/account", &totp_session).await.text());
    let totp_session = match totp_session {
        Auth::Session(cookie, _) => Auth::Session(cookie, csrf.clone()),
        other => other,
    };
    let kept = app
        .post_form(
            "/account/2fa/disable",
            &totp_session,
            &format!("csrf_token={csrf}&code={}", codes[5]),
        )
        .await;
    assert_eq!(kept.status, StatusCode::FORBIDDEN);
    assert!(kept.text().contains("required"), "{}", kept.text());
    // The audit log has each step.
    let logins = app
        .catalog()
        .audit(&Query {
            action: Some(Action::Login),
            limit: 100,
            ..Query::default()
        })
        .unwrap();
    let details: Vec<String> = logins
        .iter()
        .filter_map(|r| r.entry.detail.clone())
        .collect();
    for want in [
        "with a TOTP code",
        "with a recovery code (9 left)",
        "wrong second-factor code",
        "throttled: too many failed codes",
    ] {
        assert!(details.iter().any(|d| d == want), "{want}: {details:#?}");
    }
    let changes = app
        .catalog()
        .audit(&Query {
            action: Some(Action::TwoFactorChange),
            limit: 10,
            ..Query::default()
        })
        .unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].entry.actor, "user:admin");
    app.stop().await;
}

/// Turns a second factor on for `auth`'s user from the account page; its CSRF token and secret.
async fn turn_on(app: &App, auth: &Auth) -> (String, String) {
    let csrf = hidden_csrf(&app.get("/account", auth).await.text());
    let page = app
        .post_form("/account/2fa/start", auth, &format!("csrf_token={csrf}"))
        .await
        .text();
    let secret = between(&page, "<code class=\"secret\">", "<").to_string();
    let code = code_at(&secret, unix_now()).unwrap();
    let on = app
        .post_form(
            "/account/2fa/confirm",
            auth,
            &format!("csrf_token={csrf}&code={code}"),
        )
        .await;
    assert_eq!(on.status, StatusCode::OK);
    (csrf, secret)
}

#[tokio::test]
async fn a_second_factor_can_be_turned_off_with_a_code_unless_it_is_required() {
    let app = App::start().await;
    let admin = app.login().await;
    let (csrf, secret) = turn_on(&app, &admin).await;
    // Turning it off needs a code too.
    let wrong = app
        .post_form(
            "/account/2fa/disable",
            &admin,
            &format!("csrf_token={csrf}&code=999999"),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    let next = code_at(&secret, unix_now() + 30).unwrap();
    let off = app
        .post_form(
            "/account/2fa/disable",
            &admin,
            &format!("csrf_token={csrf}&code={next}"),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text());
    assert!(off.text().contains("Two-factor login is off."));
    // The next login needs the password alone.
    let (status, cookie) = app.try_login("admin", "correct horse battery").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(cookie.is_some());
    // An admin can end another user's sessions.
    let users = app.get("/users", &admin).await.text();
    assert!(users.contains("/users/admin/sessions/end"), "{users}");
    let ended = app
        .post_form(
            "/users/admin/sessions/end",
            &admin,
            &format!("csrf_token={csrf}"),
        )
        .await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/", &admin).await.status,
        StatusCode::SEE_OTHER,
        "the session was not ended"
    );
    let nobody = app.login().await;
    let missing = app
        .post_form(
            "/users/nobody/sessions/end",
            &nobody,
            &format!("csrf_token={}", nobody.csrf()),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn codes_tried_to_turn_a_second_factor_off_are_throttled() {
    let app = App::start().await;
    let admin = app.login().await;
    let (csrf, secret) = turn_on(&app, &admin).await;
    // A session alone cannot guess its way to turning it off: five wrong codes, then even
    // the right one waits.
    for _ in 0..5 {
        let wrong = app
            .post_form(
                "/account/2fa/disable",
                &admin,
                &format!("csrf_token={csrf}&code=111111"),
            )
            .await;
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    }
    let next = code_at(&secret, unix_now() + 30).unwrap();
    let held = app
        .post_form(
            "/account/2fa/disable",
            &admin,
            &format!("csrf_token={csrf}&code={next}"),
        )
        .await;
    assert_eq!(
        held.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        held.text()
    );
    assert!(held.text().contains("Too many wrong codes"));
    assert!(
        app.get("/account", &admin).await.text().contains("On:"),
        "two-factor login was turned off"
    );
    app.stop().await;
}
