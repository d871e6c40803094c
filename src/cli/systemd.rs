//! Telling systemd how `dbkeep serve` is (`Type=notify`): ready once the admin listens and the
//! scheduler runs, alive while the runtime answers (`WatchdogSec=`), stopping on a signal.
//! Without `NOTIFY_SOCKET` (not under systemd) each of these does nothing.

use std::time::Duration;

use sd_notify::NotifyState;

/// Says the service is ready, with `status` for `systemctl status`.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Says the service is stopping.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// When systemd watches the service (`WatchdogSec=`), pings it at half its interval from the
/// runtime: a runtime that stops answering stops the pings, and systemd restarts the service.
pub fn watch() {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let every = Duration::from_micros(usec / 2).max(Duration::from_millis(100));
    tracing::info!(every = ?every, "systemd watchdog: pinging");
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            ticks.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    });
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "could not notify systemd");
    }
}
