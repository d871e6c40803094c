//! The HTTP channels: webhooks (a JSON body, signed when a secret is set; or Slack's and
//! Discord's message shapes) and ping URLs (healthchecks.io's convention: `URL/start`, `URL`,
//! `URL/fail`).

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Channel, Event};
use dbkeep_config::config::{Config, Webhook, WebhookFormat, url_origin};
use dbkeep_model::vocab::EventKind;

/// How long one try may take, connecting included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The header that carries a webhook body's signature.
pub const SIGNATURE_HEADER: &str = "X-Dbkeep-Signature";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(true)
        .user_agent(concat!("dbkeep/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// `error`, about a request to `url`, with the URL's secret parts (path, query, user-info)
/// left out: it goes to logs and the catalog.
fn scrub(error: &str, url: &url::Url) -> String {
    let mut text = error.replace(url.as_str().trim_end_matches('/'), &url_origin(url));
    let secret = [
        &url[url::Position::BeforePath..],
        url.path(),
        url.query().unwrap_or_default(),
        url.password().unwrap_or_default(),
        url.username(),
    ];
    for part in secret.into_iter().filter(|p| !p.is_empty() && *p != "/") {
        text = text.replace(part, "…");
    }
    text
}

/// The channels `config` names.
pub(super) fn channels(config: &Config) -> Vec<Arc<dyn Channel>> {
    let mut out: Vec<Arc<dyn Channel>> = Vec::new();
    for hook in &config.notify.webhooks {
        out.push(Arc::new(WebhookChannel {
            name: hook.channel(),
            hook: hook.clone(),
            agent: agent(),
        }));
    }
    // One ping channel per URL, serving the databases that use it.
    let mut pings: Vec<(url::Url, Vec<String>)> = Vec::new();
    for db in &config.databases {
        let Some(url) = db.ping_url.as_ref().or(config.notify.ping_url.as_ref()) else {
            continue;
        };
        match pings.iter_mut().find(|(u, _)| u == url) {
            Some((_, names)) => names.push(db.name.clone()),
            None => pings.push((url.clone(), vec![db.name.clone()])),
        }
    }
    for (url, databases) in pings {
        out.push(Arc::new(PingChannel {
            name: format!("ping {}", url_origin(&url)),
            url,
            databases,
            agent: agent(),
        }));
    }
    out
}

struct WebhookChannel {
    /// `webhook NAME` or `webhook https://host`.
    name: String,
    hook: Webhook,
    agent: ureq::Agent,
}

/// The lowercase hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    dbkeep_model::text::hex(&mac.finalize().into_bytes())
}

impl Channel for WebhookChannel {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn wants(&self, event: EventKind, _database: &str) -> bool {
        event == EventKind::Test || self.hook.on.contains(&event)
    }

    fn address(&self) -> Option<(String, u16)> {
        super::address_of(&self.hook.url)
    }

    fn send(&self, event: &Event) -> Result<(), String> {
        let body = match self.hook.format {
            WebhookFormat::Json => serde_json::to_vec(event),
            WebhookFormat::Slack => {
                serde_json::to_vec(&serde_json::json!({ "text": event.summary() }))
            }
            WebhookFormat::Discord => {
                serde_json::to_vec(&serde_json::json!({ "content": event.summary() }))
            }
        }
        .map_err(|e| e.to_string())?;
        let mut request = self
            .agent
            .post(self.hook.url.as_str())
            .header("Content-Type", "application/json");
        if let Some(var) = &self.hook.secret_env {
            let secret = std::env::var(var)
                .map_err(|_| format!("the webhook secret variable {var} (secret_env) is unset"))?;
            let signed = format!("sha256={}", signature(secret.as_bytes(), &body));
            request = request.header(SIGNATURE_HEADER, &signed);
        }
        request
            .send(&body[..])
            .map(drop)
            .map_err(|e| scrub(&e.to_string(), &self.hook.url))
    }
}

struct PingChannel {
    /// `ping https://host`.
    name: String,
    url: url::Url,
    databases: Vec<String>,
    agent: ureq::Agent,
}

impl Channel for PingChannel {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn wants(&self, event: EventKind, database: &str) -> bool {
        matches!(
            event,
            EventKind::Start | EventKind::Success | EventKind::Failure
        ) && self.databases.iter().any(|d| d == database)
    }

    fn address(&self) -> Option<(String, u16)> {
        super::address_of(&self.url)
    }

    fn send(&self, event: &Event) -> Result<(), String> {
        let suffix = match event.event {
            EventKind::Start => "/start",
            EventKind::Failure => "/fail",
            _ => "",
        };
        let url = format!("{}{suffix}", self.url.as_str().trim_end_matches('/'));
        self.agent
            .get(&url)
            .call()
            .map(drop)
            .map_err(|e| scrub(&e.to_string(), &self.url))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;

    #[test]
    fn an_error_that_quotes_the_url_loses_its_secret_parts() {
        let whole = "https://USER:PASSWORD@hooks.slack.com/services/T0/B0/SECRET?token=QUERY";
        let url = url::Url::parse(whole).expect("a URL");
        for error in [
            format!("bad uri: {whole} is missing host"),
            "redirect to /services/T0/B0/SECRET refused".to_string(),
            "token=QUERY refused".to_string(),
            "USER:PASSWORD refused".to_string(),
        ] {
            let scrubbed = scrub(&error, &url);
            for secret in ["USER", "PASSWORD", "SECRET", "QUERY"] {
                assert!(!scrubbed.contains(secret), "{error} -> {scrubbed}");
            }
        }
        assert_eq!(
            scrub(&format!("bad uri: {whole}"), &url),
            "bad uri: https://hooks.slack.com"
        );
        assert_eq!(scrub("http status: 500", &url), "http status: 500");
    }
}
