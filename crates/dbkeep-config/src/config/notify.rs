//! `[notify]`: where dbkeep says that something happened (ping URLs, webhooks).

use serde::Deserialize;
use toml::Spanned;

use dbkeep_model::vocab::EventKind;

use dbkeep_model::error::ConfigError;

use super::Source;

/// The events a channel sends when its `on` is not given.
pub const DEFAULT_ON: &[EventKind] = &[
    EventKind::Failure,
    EventKind::Stale,
    EventKind::VerifyFailed,
    EventKind::DiskFilling,
    EventKind::DatabaseFound,
    EventKind::DatabaseGone,
    EventKind::WalArchiveStalled,
    EventKind::WalArchiveFailing,
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
    /// Its name in logs, `/metrics` and the catalog; `None` names it by its URL's origin.
    pub name: Option<String>,
    /// The events it receives.
    pub on: Vec<EventKind>,
    /// The environment variable holding the HMAC secret that signs each body.
    pub secret_env: Option<String>,
    /// The body's shape.
    pub format: WebhookFormat,
}

/// How the connection to the SMTP server is protected, as `smtp_url` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtps://`: TLS from the first byte.
    Wrapper,
    /// `smtp://…?tls=required`: STARTTLS, and nothing is sent when it fails.
    Required,
    /// `smtp://…?tls=opportunistic`: STARTTLS when the server offers it.
    Opportunistic,
    /// `smtp://` without `tls=`: no TLS, and so no login (a password is never sent in clear
    /// text unless the URL says so).
    Plain,
    /// `smtp://…?tls=none`: no TLS, said on purpose; a login is sent in clear text.
    None,
}

/// The values `tls=` of `smtp_url` takes, for error messages.
const TLS_VALUES: &str = "tls=required (STARTTLS), tls=opportunistic (STARTTLS when the server \
    offers it) or tls=none (no TLS: a password goes in clear text)";

/// `[notify.email]`: mail through an SMTP server.
#[derive(Debug, Clone)]
pub struct Email {
    /// `smtp://host:port` (plain; add `?tls=required` for STARTTLS, or `?tls=none` to log in
    /// without TLS) or `smtps://host:port`.
    pub smtp_url: url::Url,
    /// How the connection is protected (`smtps://` or the URL's `tls=`).
    pub tls: SmtpTls,
    /// The SMTP login, when the server wants one.
    pub username: Option<String>,
    /// The environment variable holding the SMTP password.
    pub password_env: Option<String>,
    /// The sender.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// The events it receives.
    pub on: Vec<EventKind>,
}

impl Email {
    /// Its channel's name in logs, `/metrics` and the catalog: `email smtp://host:port`.
    pub fn channel(&self) -> String {
        format!("email {}", url_origin(&self.smtp_url))
    }

    /// What `dbkeep check` warns of: a login without TLS, refused (`smtp://` alone) or sent
    /// in clear text (`tls=none`).
    pub fn warnings(&self) -> Vec<String> {
        if self.username.is_none() {
            return Vec::new();
        }
        let warning = match self.tls {
            SmtpTls::Plain => {
                "`smtp_url` of [notify.email] has no TLS, so the password of `username` is never \
                 sent and every mail fails: add ?tls=required (STARTTLS) or use smtps://, or add \
                 ?tls=none to send it in clear text on purpose"
            }
            SmtpTls::None => {
                "`smtp_url` of [notify.email] says tls=none: the password of `username` goes to \
                 the server in clear text, readable on the way; use ?tls=required (STARTTLS) or \
                 smtps:// where the server has TLS"
            }
            SmtpTls::Wrapper | SmtpTls::Required | SmtpTls::Opportunistic => return Vec::new(),
        };
        vec![warning.to_string()]
    }
}

/// The validated `[notify]` table.
#[derive(Debug, Clone, Default)]
pub struct NotifySettings {
    /// healthchecks.io-style ping URL for every database without one of its own.
    pub ping_url: Option<url::Url>,
    /// The webhooks.
    pub webhooks: Vec<Webhook>,
    /// Mail, when configured.
    pub email: Option<Email>,
}

impl NotifySettings {
    /// What loads but deserves a warning from `dbkeep check`: webhooks that share a name
    /// (their failures are counted together) and [`Email::warnings`].
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen: Vec<(String, usize)> = Vec::new();
        for hook in &self.webhooks {
            let channel = hook.channel();
            match seen.iter_mut().find(|(c, _)| *c == channel) {
                Some((_, n)) => *n += 1,
                None => seen.push((channel, 1)),
            }
        }
        for (channel, n) in seen.into_iter().filter(|(_, n)| *n > 1) {
            out.push(format!(
                "{n} webhooks are all `{channel}` in logs, /metrics and the catalog, which never show a URL's path: give each [[notify.webhook]] its own `name`"
            ));
        }
        out.extend(self.email.iter().flat_map(Email::warnings));
        out
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    ping_url: Option<Spanned<String>>,
    #[serde(default)]
    webhook: Vec<RawWebhook>,
    email: Option<RawEmail>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    smtp_url: Spanned<String>,
    username: Option<String>,
    password_env: Option<Spanned<String>>,
    from: Spanned<String>,
    to: Spanned<Vec<Spanned<String>>>,
    on: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: Spanned<String>,
    name: Option<Spanned<String>>,
    on: Option<Spanned<Vec<Spanned<String>>>>,
    secret_env: Option<Spanned<String>>,
    format: Option<WebhookFormat>,
}

/// A notification URL as logs, `/metrics` and the catalog name it: its scheme, host and port
/// (`https://hooks.slack.com`), never its path, query or user-info, where the secrets of Slack's,
/// Discord's and healthchecks.io's URLs are.
pub fn url_origin(url: &url::Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown
}

impl Webhook {
    /// Its channel's name in logs, `/metrics` and the catalog: `webhook NAME`, else
    /// `webhook https://host` (see [`url_origin`]).
    pub fn channel(&self) -> String {
        match &self.name {
            Some(name) => format!("webhook {name}"),
            None => format!("webhook {}", url_origin(&self.url)),
        }
    }
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

/// The events of an `on` list (the default when absent).
fn events(
    src: &Source<'_>,
    whose: &str,
    on: Option<&Spanned<Vec<Spanned<String>>>>,
) -> Result<Vec<EventKind>, ConfigError> {
    let Some(list) = on else {
        return Ok(DEFAULT_ON.to_vec());
    };
    list.get_ref()
        .iter()
        .map(|word| {
            EventKind::from_word(word.get_ref()).ok_or_else(|| {
                src.error(
                    word.span(),
                    format!("`on` of {whose}: unknown event `{}`; use success, failure, stale, suspicious, verify_failed, offsite_failed or disk_filling", word.get_ref()),
                )
            })
        })
        .collect()
}

/// An environment variable's name, as a `key` names it.
fn env_name(src: &Source<'_>, key: &str, var: Spanned<String>) -> Result<String, ConfigError> {
    if super::names::is_env_name(var.get_ref()) {
        Ok(var.into_inner())
    } else {
        Err(src.error(
            var.span(),
            format!("`{key}` must be an environment variable name such as DBKEEP_SECRET"),
        ))
    }
}

/// What the query of `url` (the value of `smtp_url`, at `value`) says of TLS: only `tls` is
/// read, once, with a value dbkeep knows.
fn smtp_tls(
    src: &Source<'_>,
    value: &Spanned<String>,
    url: &url::Url,
) -> Result<SmtpTls, ConfigError> {
    let wrapper = url.scheme() == "smtps";
    let mut tls = None;
    for (key, given) in url.query_pairs() {
        let fail = |message: String| Err(src.error(value.span(), message));
        if key != "tls" {
            return fail(format!(
                "`smtp_url`: unknown parameter `{key}`; only `tls` is read ({TLS_VALUES}; or smtps:// for TLS from the start)"
            ));
        }
        if tls.is_some() {
            return fail("`smtp_url` gives `tls` twice; keep one".to_string());
        }
        tls = Some(match (given.as_ref(), wrapper) {
            ("required", true) => SmtpTls::Wrapper,
            ("required", false) => SmtpTls::Required,
            ("opportunistic", false) => SmtpTls::Opportunistic,
            ("none", false) => SmtpTls::None,
            ("opportunistic" | "none", true) => {
                return fail(format!(
                    "`smtp_url`: smtps:// is TLS from the first byte, which `tls={given}` contradicts; drop `tls=`, or use smtp://…?tls={given}"
                ));
            }
            _ => {
                return fail(format!(
                    "`smtp_url`: unknown `tls={given}`; use {TLS_VALUES}, or smtps:// for TLS from the start"
                ));
            }
        });
    }
    Ok(tls.unwrap_or(if wrapper {
        SmtpTls::Wrapper
    } else {
        SmtpTls::Plain
    }))
}

impl RawEmail {
    fn validate(self, src: &Source<'_>) -> Result<Email, ConfigError> {
        let smtp_url = match url::Url::parse(self.smtp_url.get_ref()) {
            Ok(u) if matches!(u.scheme(), "smtp" | "smtps") && u.host().is_some() => u,
            _ => {
                return Err(src.error(
                    self.smtp_url.span(),
                    "`smtp_url` must be smtp://host:port (add ?tls=required for STARTTLS) or smtps://host:port",
                ));
            }
        };
        if smtp_url.password().is_some() {
            return Err(src.error(
                self.smtp_url.span(),
                "`smtp_url` must not hold a password: put it in an environment variable named by `password_env`",
            ));
        }
        let tls = smtp_tls(src, &self.smtp_url, &smtp_url)?;
        let address = |v: &Spanned<String>| -> Result<String, ConfigError> {
            v.get_ref()
                .parse::<lettre::message::Mailbox>()
                .map(|_| v.get_ref().clone())
                .map_err(|e| {
                    src.error(
                        v.span(),
                        format!("`{}` is not a mail address ({e})", v.get_ref()),
                    )
                })
        };
        let from = address(&self.from)?;
        if self.to.get_ref().is_empty() {
            return Err(src.error(self.to.span(), "`to` of [notify.email] is empty"));
        }
        let to = self
            .to
            .get_ref()
            .iter()
            .map(address)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Email {
            smtp_url,
            tls,
            username: self.username,
            password_env: self
                .password_env
                .map(|v| env_name(src, "password_env", v))
                .transpose()?,
            from,
            to,
            on: events(src, "[notify.email]", self.on.as_ref())?,
        })
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
            let name = match raw.name {
                Some(name) if !super::names::is_name(name.get_ref()) => {
                    return Err(src.error(
                        name.span(),
                        format!("webhook `name = \"{}\"` is invalid: use 1 to 64 letters, digits, `-` or `_` (it names the webhook in logs and /metrics)", name.get_ref()),
                    ));
                }
                Some(name)
                    if webhooks
                        .iter()
                        .any(|w: &Webhook| w.name.as_deref() == Some(name.get_ref())) =>
                {
                    return Err(src.error(
                        name.span(),
                        format!("duplicate webhook `name = \"{}\"`: each [[notify.webhook]] needs its own name", name.get_ref()),
                    ));
                }
                other => other.map(Spanned::into_inner),
            };
            let on = events(src, "a webhook", raw.on.as_ref())?;
            let secret_env = raw
                .secret_env
                .map(|v| env_name(src, "secret_env", v))
                .transpose()?;
            webhooks.push(Webhook {
                url,
                name,
                on,
                secret_env,
                format: raw.format.unwrap_or(WebhookFormat::Json),
            });
        }
        let email = self.email.map(|e| e.validate(src)).transpose()?;
        Ok(NotifySettings {
            ping_url,
            webhooks,
            email,
        })
    }
}
