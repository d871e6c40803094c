//! The admin's Setup page: the checks of `dbkeep doctor`, run when the page is asked for.

use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::response::{IntoResponse, Response};

use super::auth::Identity;
use super::respond::internal_page;
use super::view::Frame;
use super::{State, with_runner};
use dbkeep_model::health::Level;

/// One check on the page.
pub struct CheckView {
    pub check: String,
    pub level: &'static str,
    pub colour: &'static str,
    pub detail: String,
    pub fix: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "setup.html")]
pub struct Setup {
    pub frame: Frame,
    pub checks: Vec<CheckView>,
    pub summary: String,
    pub worst: &'static str,
}

pub async fn setup_get(state: State, Extension(identity): Extension<Identity>) -> Response {
    let found = with_runner(&state, |runner| {
        let config = runner.config();
        Ok(dbkeep_core::doctor::check(
            &config,
            Ok(runner),
            dbkeep_core::doctor::Options::default(),
        ))
    })
    .await;
    let mut found = match found {
        Ok(found) => found,
        Err(e) => return internal_page(&state, &e),
    };
    // An admin of some databases sees the checks of those (and the shared ones) only.
    found.retain(|f| {
        f.check
            .strip_prefix("database ")
            .and_then(|rest| rest.split_once(':'))
            .is_none_or(|(name, _)| identity.sees(name))
    });
    let count = |level: Level| found.iter().filter(|f| f.level == level).count();
    let summary = format!(
        "{} ok, {} warn, {} fail",
        count(Level::Ok),
        count(Level::Warn),
        count(Level::Fail)
    );
    let colour = |level: Level| match level {
        Level::Ok => "green",
        Level::Warn => "orange",
        Level::Fail => "red",
    };
    let worst = colour(dbkeep_core::doctor::worst(&found));
    Setup {
        frame: super::pages::frame(&state, &identity, "setup"),
        checks: found
            .into_iter()
            .map(|f| CheckView {
                level: f.level.as_str(),
                colour: colour(f.level),
                check: f.check,
                detail: f.detail,
                fix: f.fix.unwrap_or_default(),
            })
            .collect(),
        summary,
        worst,
    }
    .into_response()
}
