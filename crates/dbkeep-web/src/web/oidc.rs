//! Single sign-on with OpenID Connect: the authorization code flow with PKCE, `state` (kept
//! in the catalog, good once, bound to the browser by a cookie) and `nonce`; the ID token's
//! signature checked against the provider's keys (fetched again once when a token is signed
//! with a key not seen yet: the provider rotated its keys), its issuer, audience, expiry and
//! nonce checked by the `openidconnect` crate. The user's name and groups come from the ID
//! token and the provider's userinfo; their role from `[[auth.oidc.groups]]`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreProviderMetadata,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
    UserInfoClaims,
};
use serde::{Deserialize, Serialize};

use super::auth::{NextQuery, cookie, open_session, safe_next, set_cookie};
use super::{State, WebState, blocking};
use dbkeep_config::config::auth::OidcSettings;
use dbkeep_model::accounts::OidcLogin;
use dbkeep_model::audit::{Action, Entry, Outcome};
use dbkeep_model::token;

/// The cookie binding a login gone to the provider to this browser (it holds the state).
const STATE_COOKIE: &str = "dbkeep_oidc";
/// How long a login may stay at the provider.
const STATE_TTL: chrono::Duration = chrono::Duration::minutes(10);
/// How long a request to the provider may take.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from the provider.
const MAX_ANSWER_BYTES: u64 = 1 << 20;

/// Why a request to the provider failed.
#[derive(Debug)]
pub struct ProviderError(String);

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProviderError {}

/// The provider, as this service knows it: its settings, an HTTP client that follows no
/// redirect (a provider's answer must not send dbkeep elsewhere), and its discovery document
/// with its keys, fetched once and again when its keys change.
pub struct Provider {
    settings: OidcSettings,
    redirect: RedirectUrl,
    agent: ureq::Agent,
    metadata: Mutex<Option<CoreProviderMetadata>>,
}

/// Every claim besides the standard ones (groups, or a custom user name claim).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct Extra(HashMap<String, serde_json::Value>);

impl AdditionalClaims for Extra {}

impl Provider {
    /// The provider of `settings`, sending browsers back to `public_url`.
    ///
    /// # Errors
    /// When the callback address cannot be made from `public_url`.
    pub fn new(settings: OidcSettings, public_url: &url::Url) -> Result<Self, ProviderError> {
        let callback = public_url
            .join("login/oidc/callback")
            .map_err(|e| ProviderError(format!("public_url cannot have a callback: {e}")))?;
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(PROVIDER_TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("dbkeep/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Self {
            settings,
            redirect: RedirectUrl::from_url(callback),
            agent,
            metadata: Mutex::new(None),
        })
    }

    fn http(
        &self,
        request: openidconnect::HttpRequest,
    ) -> Result<openidconnect::HttpResponse, ProviderError> {
        let answer = self
            .agent
            .run(request)
            .map_err(|e| ProviderError(format!("the provider did not answer: {e}")))?;
        let (parts, mut body) = answer.into_parts();
        let bytes = body
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()
            .map_err(|e| ProviderError(format!("the provider's answer could not be read: {e}")))?;
        Ok(openidconnect::http::Response::from_parts(parts, bytes))
    }

    /// The discovery document (and keys): the one fetched before, or fetched now (`fresh`).
    fn metadata(&self, fresh: bool) -> Result<CoreProviderMetadata, ProviderError> {
        let mut kept = self.metadata.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = kept.as_ref().filter(|_| !fresh) {
            return Ok(m.clone());
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|e| ProviderError(format!("[auth.oidc] issuer is not a URL: {e}")))?;
        let http = |r| self.http(r);
        let m = CoreProviderMetadata::discover(&issuer, &http).map_err(|e| {
            ProviderError(format!(
                "the provider's discovery document at {} could not be read: {}",
                self.settings.issuer,
                chain(&e)
            ))
        })?;
        *kept = Some(m.clone());
        Ok(m)
    }

    fn secret(&self) -> Result<Option<ClientSecret>, ProviderError> {
        match &self.settings.client_secret_env {
            None => Ok(None),
            Some(var) => std::env::var(var).map(|s| Some(ClientSecret::new(s))).map_err(|_| {
                ProviderError(format!(
                    "[auth.oidc] client_secret_env names {var}, which is not set: set it to the client secret"
                ))
            }),
        }
    }

    /// Where to send the browser, and what to keep until it comes back.
    fn begin(&self) -> Result<(url::Url, String, OidcLogin), ProviderError> {
        let client = CoreClient::from_provider_metadata(
            self.metadata(false)?,
            ClientId::new(self.settings.client_id.clone()),
            self.secret()?,
        )
        .set_redirect_uri(self.redirect.clone());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in self.settings.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let login = OidcLogin {
            verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
            next: String::new(),
        };
        Ok((url, state.secret().clone(), login))
    }

    /// Exchanges `code` and checks the ID token; the user's name and groups.
    fn finish(
        &self,
        code: &str,
        login: &OidcLogin,
    ) -> Result<(String, Vec<String>), ProviderError> {
        let secret = self.secret()?;
        let make = |m: CoreProviderMetadata| {
            CoreClient::from_provider_metadata(
                m,
                ClientId::new(self.settings.client_id.clone()),
                secret.clone(),
            )
            .set_redirect_uri(self.redirect.clone())
        };
        let http = |r| self.http(r);
        let mut client = make(self.metadata(false)?);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| ProviderError(format!("the provider has no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(login.verifier.clone()))
            .request(&http)
            .map_err(|e| ProviderError(format!("the code was not exchanged: {}", chain(&e))))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| ProviderError("the provider sent no ID token".into()))?;
        let nonce = Nonce::new(login.nonce.clone());
        let first = id_token
            .claims(&client.id_token_verifier(), &nonce)
            .cloned();
        let claims = match first {
            Ok(c) => c,
            // Signed with a key not seen yet: the provider may have rotated its keys. They
            // are fetched again, once, and the token checked against them.
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) => {
                client = make(self.metadata(true)?);
                id_token
                    .claims(&client.id_token_verifier(), &nonce)
                    .map_err(|e| ProviderError(format!("the ID token was refused: {}", chain(&e))))?
                    .clone()
            }
            Err(e) => {
                return Err(ProviderError(format!(
                    "the ID token was refused: {}",
                    chain(&e)
                )));
            }
        };
        let info: UserInfoClaims<Extra, CoreGenderClaim> = client
            .user_info(
                tokens.access_token().clone(),
                Some(claims.subject().clone()),
            )
            .map_err(|e| ProviderError(format!("the provider has no userinfo endpoint: {e}")))?
            .request(&http)
            .map_err(|e| ProviderError(format!("the userinfo was not read: {}", chain(&e))))?;
        let name = match self.settings.username_claim.as_str() {
            "sub" => Some(claims.subject().to_string()),
            "email" => claims.email().or(info.email()).map(|e| e.to_string()),
            "preferred_username" => claims
                .preferred_username()
                .or(info.preferred_username())
                .map(|u| u.to_string()),
            other => info
                .additional_claims()
                .0
                .get(other)
                .and_then(|v| v.as_str())
                .map(str::to_string),
        }
        .ok_or_else(|| {
            ProviderError(format!(
                "the provider sent no `{}` claim for the user name",
                self.settings.username_claim
            ))
        })?;
        let groups = match info.additional_claims().0.get(&self.settings.groups_claim) {
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect(),
            Some(serde_json::Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        Ok((name, groups))
    }
}

/// An error and its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// `GET /login/oidc`: off to the provider, with a state kept in the catalog and a cookie.
pub async fn start_get(state: State, q: Result<Query<NextQuery>, QueryRejection>) -> Response {
    let Some(provider) = state.oidc.clone() else {
        return super::respond::not_found(
            axum::extract::State(Arc::clone(&state)),
            "/login/oidc".parse().unwrap_or_default(),
        )
        .await;
    };
    let next = q.ok().and_then(|Query(q)| q.next()).unwrap_or_default();
    let next = safe_next(&state.base, &next);
    let now = state.clock.now();
    let begun = blocking(&state, move |r| {
        let (url, csrf, mut login) = provider
            .begin()
            .map_err(|e| dbkeep_model::error::Error::Refused(e.to_string()))?;
        login.next = next;
        r.accounts()
            .add_oidc_login(&token::token_digest(&csrf), &login, now, now + STATE_TTL)?;
        Ok((url, csrf))
    })
    .await;
    match begun {
        Ok((url, csrf)) => {
            let mut r = Redirect::to(url.as_str()).into_response();
            r.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&state, STATE_COOKIE, &csrf, STATE_TTL.num_seconds()),
            );
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "single sign-on could not start");
            failed_page(
                &state,
                "Single sign-on is not available now; the service's log says why.",
            )
        }
    }
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The login page with `message`, answered 401.
fn failed_page(state: &Arc<WebState>, message: &str) -> Response {
    let csrf = token::random_token().unwrap_or_default();
    let mut r = super::auth::form_page(
        state,
        StatusCode::UNAUTHORIZED,
        &csrf,
        &state.home(),
        Some(message),
        false,
    );
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(state, STATE_COOKIE, "", 0));
    r
}

/// `GET /login/oidc/callback`: back from the provider.
pub async fn callback_get(
    state: State,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    q: Result<Query<Callback>, QueryRejection>,
) -> Response {
    let Some(provider) = state.oidc.clone() else {
        return super::respond::not_found(
            axum::extract::State(Arc::clone(&state)),
            "/login/oidc/callback".parse().unwrap_or_default(),
        )
        .await;
    };
    let source = connect.map(|Extension(ConnectInfo(addr))| addr.ip().to_string());
    let agent = super::audited::user_agent(&headers);
    let row = |actor: &str, target: &str, outcome: Outcome, detail: String| Entry {
        detail: Some(detail),
        source: source.clone(),
        user_agent: agent.clone(),
        ..Entry::new(actor, Action::Login, target, outcome)
    };
    let refuse = |why: String, shown: &'static str| {
        let state = Arc::clone(&state);
        let entry = row(
            "anonymous",
            "",
            Outcome::Refused,
            format!("single sign-on: {why}"),
        );
        async move {
            tracing::warn!(why = %why, "single sign-on refused");
            super::audited::record(&state, entry).await;
            failed_page(&state, shown)
        }
    };
    let Ok(Query(q)) = q else {
        return refuse(
            "a malformed callback".into(),
            "Single sign-on failed. Try again.",
        )
        .await;
    };
    if let Some(error) = q.error {
        let error = dbkeep_model::text::escape_controls(&error, false).into_owned();
        return refuse(
            format!("the provider answered {error}"),
            "The provider did not log you in.",
        )
        .await;
    }
    let (Some(code), Some(returned)) = (q.code, q.state) else {
        return refuse(
            "no code or state".into(),
            "Single sign-on failed. Try again.",
        )
        .await;
    };
    // The state must be this browser's (its cookie), and known to the catalog (once).
    let mine = cookie(&headers, STATE_COOKIE).unwrap_or_default();
    if mine.is_empty() || !super::auth::equal(&mine, &returned) {
        return refuse(
            "the state is not this browser's".into(),
            "Single sign-on failed: start it again from this page.",
        )
        .await;
    }
    let now = state.clock.now();
    let digest = token::token_digest(&returned);
    let taken = blocking(&state, move |r| r.accounts().take_oidc_login(&digest, now)).await;
    let login = match taken {
        Ok(Some(login)) => login,
        Ok(None) => {
            return refuse(
                "the state is unknown, used already or expired".into(),
                "Single sign-on failed: start it again from this page.",
            )
            .await;
        }
        Err(e) => return super::respond::internal_page(&state, &e),
    };
    let checked = {
        let login = login.clone();
        tokio::task::spawn_blocking(move || provider.finish(&code, &login)).await
    };
    let (name, groups) = match checked {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            return refuse(
                e.to_string(),
                "Single sign-on failed: the provider's answer was refused.",
            )
            .await;
        }
        Err(e) => {
            return refuse(
                format!("a worker thread failed: {e}"),
                "Single sign-on failed. Try again.",
            )
            .await;
        }
    };
    let settings = match state.runner.config().web.auth.oidc.clone() {
        Some(s) => s,
        None => return failed_page(&state, "Single sign-on is not configured."),
    };
    let Some(grant) = settings.grant_for(&groups) else {
        let entry = row(
            "anonymous",
            &name,
            Outcome::Refused,
            format!(
                "single sign-on: none of the groups [{}] has a role",
                groups.join(", ")
            ),
        );
        super::audited::record(&state, entry).await;
        return failed_page(
            &state,
            "You logged in, but none of your groups may use dbkeep.",
        );
    };
    let who = name.clone();
    let made = blocking(&state, move |r| {
        r.accounts().sign_on_user(&who, &grant, now)
    })
    .await;
    let user = match made {
        Ok(Some(user)) => user,
        Ok(None) => {
            let entry = row(
                "anonymous",
                &name,
                Outcome::Refused,
                "single sign-on: a local user has this name".into(),
            );
            super::audited::record(&state, entry).await;
            return failed_page(&state, "A local user has your name: ask an admin.");
        }
        Err(e) => return super::respond::internal_page(&state, &e),
    };
    let next = safe_next(&state.base, &login.next);
    let entry = row(
        &format!("user:{}", user.name),
        &user.name,
        Outcome::Ok,
        format!(
            "single sign-on as {} (groups: {})",
            user.grant,
            groups.join(", ")
        ),
    );
    let mut r = open_session(&state, &user, &next, entry).await;
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&state, STATE_COOKIE, "", 0));
    r
}

/// The provider for `web`'s `[auth.oidc]`, if there is one.
pub(super) fn provider(web: &dbkeep_config::config::WebSettings) -> Option<Arc<Provider>> {
    let settings = web.auth.oidc.clone()?;
    let public = web.public_url.as_ref()?;
    match Provider::new(settings, public) {
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            tracing::error!(error = %e, "single sign-on is off");
            None
        }
    }
}
