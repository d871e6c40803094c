//! The web's side of the audit log: who asked (with their address and `User-Agent`), what a
//! handler adds to its route's row, and the writing of a row off the async threads.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::WebState;
use dbkeep_model::audit::{Action, Entry, Outcome};

/// What a handler adds to the audit row of its route: what it did (which copy was
/// downloaded), or why it failed. Put in the response's extensions.
#[derive(Debug, Clone)]
pub struct AuditDetail(pub String);

/// What a handler names as its route's target when the path does not (a database given in
/// a JSON body). Put in the response's extensions.
#[derive(Debug, Clone)]
pub struct AuditTarget(pub String);

/// Who is asking, as the audit log names them, and from where.
pub struct Caller {
    /// `user:NAME` or `token:NAME#ID`.
    pub actor: String,
    source: Option<String>,
    user_agent: Option<String>,
    api: bool,
}

impl Caller {
    /// `actor`, asking with the request's address and `User-Agent`.
    pub fn new(
        actor: String,
        headers: &HeaderMap,
        connect: Option<&ConnectInfo<SocketAddr>>,
    ) -> Self {
        Self {
            actor,
            source: connect.map(|c| c.0.ip().to_string()),
            user_agent: user_agent(headers),
            api: false,
        }
    }

    /// Whether refusals are answered in JSON (an API route).
    pub fn is_api(&self) -> bool {
        self.api
    }

    /// The same caller, answered refusals in JSON (`api`) or plain text.
    #[must_use]
    pub fn api(self, api: bool) -> Self {
        Self { api, ..self }
    }

    /// A row of `action` on `target` by this caller, with their address and agent: for work
    /// that ends after the answer (a restore), recorded later by whoever finishes it.
    pub fn entry(&self, action: Action, target: &str, outcome: Outcome) -> Entry {
        Entry {
            source: self.source.clone(),
            user_agent: self.user_agent.clone(),
            ..Entry::new(&self.actor, action, target, outcome)
        }
    }

    /// Records `entry` with this caller's address and agent (off the async threads: the
    /// catalog is synchronous), before the answer goes out.
    pub async fn record(&self, state: &WebState, entry: Entry) {
        record(
            state,
            Entry {
                source: self.source.clone(),
                user_agent: self.user_agent.clone(),
                ..entry
            },
        )
        .await;
    }

    /// Records a refusal of `action` on `target` and answers 403 saying `why`.
    pub async fn refuse(
        &self,
        state: &WebState,
        action: Action,
        target: &str,
        why: &str,
    ) -> Response {
        self.record(
            state,
            Entry::new(&self.actor, action, target, Outcome::Refused).detail(why),
        )
        .await;
        let message = format!("forbidden: {why}");
        if self.api {
            super::respond::error(StatusCode::FORBIDDEN, message)
        } else {
            (StatusCode::FORBIDDEN, format!("{message}\n")).into_response()
        }
    }
}

/// Records `entry` in the audit log, off the async threads.
pub async fn record(state: &WebState, entry: Entry) {
    let runner = Arc::clone(&state.runner);
    let written = tokio::task::spawn_blocking(move || {
        dbkeep_core::audit::record(runner.catalog(), entry);
    })
    .await;
    if let Err(e) = written {
        tracing::error!(error = %e, "the audit log's writer thread failed");
    }
}

/// The request's `User-Agent`, when it is text.
pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
