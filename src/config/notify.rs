//! `[notify]`: where dbkeep says that something happened (ping URLs, webhooks).

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Source};

/// What can be notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A backup started (pings only).
    Start,
    /// A backup succeeded.
    Success,
    /// A backup failed.
    Failure,
    /// A successful backup is less than half the size of the one before it.
    Suspicious,
    /// A verification (or restore drill) failed.
    VerifyFailed,
    /// `dbkeep notify test`.
    Test,
}

impl EventKind {
    /// The word used in configuration and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Start => "start",
            EventKind::Success => "success",
            EventKind::Failure => "failure",
            EventKind::Suspicious => "suspicious",
            EventKind::VerifyFailed => "verify_failed",
            EventKind::Test => "test",
        }
    }

    fn parse(word: &str) -> Option<EventKind> {
        [
            EventKind::Success,
            EventKind::Failure,
            EventKind::Suspicious,
            EventKind::VerifyFailed,
        ]
        .into_iter()
        .find(|k| k.as_str() == word)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The events a channel sends when its `on` is not given.
pub const DEFAULT_ON: &[EventKind] = &[
    EventKind::Failure,
    EventKind::Suspicious,
    EventKind::VerifyFailed,
];

/// The shape of a webhook's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// dbkeep's own JSON object.
    Json,
    /// A Slack incoming-webhook message (`{"text": …}`).
    Slack,
    /// A Discord webhook message (`{"content": …}`).
    Discord,
}

/// One `[[notify.webhook]]`.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// Where the POST goes.
    pub url: url::Url,
    /// The events it receives.
    pub on: Vec<EventKind>,
    /// The environment variable holding the HMAC secret that signs each body.
    pub secret_env: Option<String>,
    /// The body's shape.
    pub format: WebhookFormat,
}

/// The validated `[notify]` table.
#[derive(Debug, Clone, Default)]
pub struct NotifySettings {
    /// healthchecks.io-style ping URL for every database without one of its own.
    pub ping_url: Option<url::Url>,
    /// The webhooks.
    pub webhooks: Vec<Webhook>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    ping_url: Option<Spanned<String>>,
    #[serde(default)]
    webhook: Vec<RawWebhook>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: Spanned<String>,
    on: Option<Spanned<Vec<Spanned<String>>>>,
    secret_env: Option<Spanned<String>>,
    format: Option<WebhookFormat>,
}

/// An `http(s)://` URL of a notification key.
pub(super) fn http_url(
    src: &Source<'_>,
    key: &str,
    value: &Spanned<String>,
) -> Result<url::Url, ConfigError> {
    match url::Url::parse(value.get_ref()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        _ => Err(src.error(
            value.span(),
            format!(
                "`{key}` must be an http:// or https:// URL, such as \"https://hc-ping.com/UUID\""
            ),
        )),
    }
}

impl RawNotify {
    pub(super) fn validate(self, src: &Source<'_>) -> Result<NotifySettings, ConfigError> {
        let ping_url = self
            .ping_url
            .as_ref()
            .map(|u| http_url(src, "ping_url", u))
            .transpose()?;
        let mut webhooks = Vec::new();
        for raw in self.webhook {
            let url = http_url(src, "url", &raw.url)?;
            let on = match &raw.on {
                None => DEFAULT_ON.to_vec(),
                Some(list) => {
                    let mut on = Vec::new();
                    for word in list.get_ref() {
                        let kind = EventKind::parse(word.get_ref()).ok_or_else(|| {
                            src.error(
                                word.span(),
                                format!("`on` of a webhook: unknown event `{}`; use success, failure, suspicious or verify_failed", word.get_ref()),
                            )
                        })?;
                        on.push(kind);
                    }
                    on
                }
            };
            let secret_env = match raw.secret_env {
                Some(var) => {
                    let ok = !var.get_ref().is_empty()
                        && var
                            .get_ref()
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if !ok {
                        return Err(src.error(
                            var.span(),
                            "`secret_env` of a webhook must be an environment variable name such as DBKEEP_WEBHOOK_SECRET",
                        ));
                    }
                    Some(var.into_inner())
                }
                None => None,
            };
            webhooks.push(Webhook {
                url,
                on,
                secret_env,
                format: raw.format.unwrap_or(WebhookFormat::Json),
            });
        }
        Ok(NotifySettings { ping_url, webhooks })
    }
}
