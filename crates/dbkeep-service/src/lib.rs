//! dbkeep's service: the long-running loop of `dbkeep serve`. The scheduler's fires, drills,
//! off-site resends, heartbeats and the stale watch run as jobs on a runtime, each blocking
//! step on a thread of its own, until shutdown.

pub mod service;

pub use service::{Service, ServiceHandle};
