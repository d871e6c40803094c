//! Mail through an SMTP server (lettre): one message per event, to every recipient. dbkeep
//! leads the SMTP session itself (connect, STARTTLS, AUTH, send) so that it can refuse to send
//! a password over a connection without TLS unless `smtp_url` says `tls=none`.

use std::time::Duration;

use lettre::Message;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{SmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use super::{Channel, Event};
use dbkeep_config::config::{Email, SmtpTls};
use dbkeep_model::vocab::EventKind;

/// How long one try may take.
const TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct EmailChannel {
    pub(super) email: Email,
    /// Where a backup's page is, when `public_url` is set.
    pub(super) public_url: Option<url::Url>,
}

impl EmailChannel {
    fn body(&self, event: &Event) -> String {
        let mut body = format!("{}\n\n", event.summary());
        let mut line = |label: &str, value: String| {
            body.push_str(&format!("{label:<10} {value}\n"));
        };
        line("Event:", event.event.to_string());
        line("Database:", event.database.clone());
        if let Some(id) = event.backup_id {
            line("Backup:", format!("#{id}"));
        }
        if let Some(f) = &event.file_name {
            line("File:", f.clone());
        }
        if let Some(t) = event.started_at {
            line("Started:", t.to_rfc3339());
        }
        if let Some(t) = event.finished_at {
            line("Finished:", t.to_rfc3339());
        }
        if let Some(n) = event.size_bytes {
            line("Size:", format!("{n} bytes"));
        }
        line("Host:", event.host.clone());
        if let Some(e) = &event.error {
            body.push_str(&format!(
                "\nError:\n{}\n",
                dbkeep_model::text::escape_controls(e, true)
            ));
        }
        if let (Some(base), Some(id)) = (&self.public_url, event.backup_id) {
            body.push_str(&format!(
                "\n{}/backups/{id}\n",
                base.as_str().trim_end_matches('/')
            ));
        }
        body
    }

    /// The server to connect to, and how it is shown (`host:port`): the URL's port, else the
    /// one its kind of TLS is served on.
    fn server(&self) -> Result<(String, u16, String), String> {
        let url = &self.email.smtp_url;
        let host = match url.host() {
            Some(url::Host::Ipv6(address)) => address.to_string(),
            Some(host) => host.to_string(),
            None => return Err("smtp_url names no host".to_string()),
        };
        let port = url.port().unwrap_or(match self.email.tls {
            SmtpTls::Wrapper => 465,
            SmtpTls::Required | SmtpTls::Opportunistic => 587,
            SmtpTls::Plain | SmtpTls::None => 25,
        });
        let shown = format!("{}:{port}", url.host_str().unwrap_or(&host));
        Ok((host, port, shown))
    }

    /// The login, when `username` is set (the password from `password_env`).
    fn credentials(&self) -> Result<Option<Credentials>, String> {
        let Some(user) = &self.email.username else {
            return Ok(None);
        };
        let password = match &self.email.password_env {
            Some(var) => std::env::var(var)
                .map_err(|_| format!("the SMTP password variable {var} (password_env) is unset"))?,
            None => String::new(),
        };
        Ok(Some(Credentials::new(user.clone(), password)))
    }

    /// The name given in EHLO: the URL's path when it has one, as lettre reads such URLs.
    fn hello_name(&self) -> ClientId {
        match self.email.smtp_url.path().trim_matches('/') {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_string()),
        }
    }

    /// One SMTP session that sends `message`: TLS as `smtp_url` says, and a login only over
    /// TLS (or with `tls=none`).
    fn deliver(&self, message: &Message) -> Result<(), String> {
        let (host, port, server) = self.server()?;
        let credentials = self.credentials()?;
        if credentials.is_some() && self.email.tls == SmtpTls::Plain {
            return Err(format!(
                "refusing to send the SMTP password to {server} without TLS: add ?tls=required \
                 (STARTTLS) to smtp_url or use smtps://, or add ?tls=none to send it in clear \
                 text on purpose"
            ));
        }
        let tls = match self.email.tls {
            SmtpTls::Plain | SmtpTls::None => None,
            _ => Some(
                TlsParameters::new(host.clone()).map_err(|e| format!("TLS for {server}: {e}"))?,
            ),
        };
        let hello = self.hello_name();
        let wrapper = tls.as_ref().filter(|_| self.email.tls == SmtpTls::Wrapper);
        let mut conn =
            SmtpConnection::connect((host.as_str(), port), Some(TIMEOUT), &hello, wrapper, None)
                .map_err(|e| explain(&e, &server, Step::Connect))?;
        let sent = (|| {
            match (self.email.tls, &tls) {
                (SmtpTls::Required, _) if !conn.can_starttls() => {
                    return Err(format!(
                        "the SMTP server {server} does not offer STARTTLS, which tls=required asks for"
                    ));
                }
                (SmtpTls::Required | SmtpTls::Opportunistic, Some(tls)) if conn.can_starttls() => {
                    conn.starttls(tls, &hello)
                        .map_err(|e| explain(&e, &server, Step::StartTls))?;
                }
                _ => {}
            }
            if let Some(credentials) = &credentials {
                if !conn.is_encrypted() && self.email.tls != SmtpTls::None {
                    return Err(format!(
                        "the SMTP server {server} does not offer STARTTLS: refusing to send the \
                         SMTP password without TLS (tls=opportunistic); add ?tls=none to \
                         smtp_url to send it in clear text on purpose"
                    ));
                }
                conn.auth(DEFAULT_MECHANISMS, credentials)
                    .map_err(|e| explain(&e, &server, Step::Auth))?;
            }
            conn.send(message.envelope(), &message.formatted())
                .map(drop)
                .map_err(|e| explain(&e, &server, Step::Send))
        })();
        // QUIT (unless the connection broke), then close.
        conn.abort();
        sent
    }
}

/// A step of the SMTP session, for messages.
#[derive(Clone, Copy)]
enum Step {
    /// Connecting, the server's greeting and EHLO.
    Connect,
    /// STARTTLS.
    StartTls,
    /// The login.
    Auth,
    /// The message.
    Send,
}

/// `error`, from `step` of a session with `server` (`host:port`), in words: a timeout says so
/// with the server and the time waited (the system's words for it are "Resource temporarily
/// unavailable"), any other error at connection names the server.
fn explain(error: &lettre::transport::smtp::Error, server: &str, step: Step) -> String {
    let mut source = std::error::Error::source(error);
    let mut io = None;
    while let Some(e) = source {
        if let Some(e) = e.downcast_ref::<std::io::Error>() {
            io = Some(e.kind());
            break;
        }
        source = e.source();
    }
    let secs = TIMEOUT.as_secs();
    match (io, step) {
        (Some(std::io::ErrorKind::TimedOut), Step::Connect) if !error.is_response() => {
            format!("timed out: could not connect to the SMTP server {server} within {secs}s")
        }
        (Some(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), _) => {
            let waiting = match step {
                Step::Connect => "waiting for its greeting and its answer to EHLO",
                Step::StartTls => "during STARTTLS",
                Step::Auth => "during the login",
                Step::Send => "while the message was sent",
            };
            format!("timed out: the SMTP server {server} did not answer within {secs}s ({waiting})")
        }
        (_, Step::Connect) => format!("the SMTP server {server}: {error}"),
        _ => error.to_string(),
    }
}

impl Channel for EmailChannel {
    fn name(&self) -> String {
        self.email.channel()
    }

    fn wants(&self, event: EventKind, _database: &str) -> bool {
        event == EventKind::Test || self.email.on.contains(&event)
    }

    fn address(&self) -> Option<(String, u16)> {
        self.server().ok().map(|(host, port, _)| (host, port))
    }

    fn send(&self, event: &Event) -> Result<(), String> {
        let mailbox = |a: &str| a.parse::<Mailbox>().map_err(|e| format!("{a}: {e}"));
        let mut message = Message::builder()
            .from(mailbox(&self.email.from)?)
            .subject(event.subject());
        for to in &self.email.to {
            message = message.to(mailbox(to)?);
        }
        let message = message
            .body(self.body(event))
            .map_err(|e| format!("cannot build the message: {e}"))?;
        self.deliver(&message)
    }
}
