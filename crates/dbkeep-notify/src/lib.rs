//! dbkeep's notifications: events sent to pings, webhooks and email, each channel on a thread
//! of its own with retries, every delivery recorded through the catalog's port.

pub mod notify;

pub use notify::Notifier;
