//! Mail through an SMTP server (lettre): one message per event, to every recipient.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};

use super::{Channel, Event};
use crate::config::{Email, EventKind};

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
                crate::text::escape_controls(e, true)
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

    fn transport(&self) -> Result<SmtpTransport, String> {
        let mut builder = SmtpTransport::from_url(self.email.smtp_url.as_str())
            .map_err(|e| format!("smtp_url: {e}"))?
            .timeout(Some(TIMEOUT));
        if let Some(user) = &self.email.username {
            let password = match &self.email.password_env {
                Some(var) => std::env::var(var).map_err(|_| {
                    format!("the SMTP password variable {var} (password_env) is unset")
                })?,
                None => String::new(),
            };
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(builder.build())
    }
}

impl Channel for EmailChannel {
    fn name(&self) -> String {
        let mut shown = self.email.smtp_url.clone();
        let _ = shown.set_username("");
        shown.set_query(None);
        format!("email {shown}")
    }

    fn wants(&self, event: EventKind, _database: &str) -> bool {
        event == EventKind::Test || self.email.on.contains(&event)
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
        self.transport()?
            .send(&message)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}
