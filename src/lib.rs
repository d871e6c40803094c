//! dbkeep: automatic, verified backups of SQLite, PostgreSQL and MySQL/MariaDB databases.
//!
//! This crate is the facade of a workspace with one crate per layer (see `ARCHITECTURE.md`):
//! it re-exports each layer's modules under the paths an embedding application uses, and holds
//! the `dbkeep` binary, a thin command line over them. The library does everything; A backup
//! flows from an [`engine::Engine`] through the [`pipeline`] (compression, SHA-256) into a
//! private temporary file that is synced and renamed into the backup folder ([`storage`]),
//! and every attempt is recorded in the [`catalog`]. [`retention`] decides what may be pruned.
//!
//! ```no_run
//! # fn main() -> dbkeep::Result<()> {
//! let config = dbkeep::Config::load(std::path::Path::new("dbkeep.toml"))?;
//! let runner = dbkeep::Runner::open(config)?;
//! let outcome = runner.backup("app", &dbkeep::BackupOptions::default(), &dbkeep::pipeline::NoProgress)?;
//! println!("{} {:?}", outcome.record.status, outcome.record.path);
//! # Ok(()) }
//! ```

/// Users, sessions and API tokens (the catalog's port), and password hashing.
pub mod accounts {
    pub use dbkeep_core::passwords::*;
    pub use dbkeep_model::accounts::*;
}

/// The audit log: its rows and port (from the model) and its writer (from the core).
pub mod audit {
    pub use dbkeep_core::audit::*;
    pub use dbkeep_model::audit::*;
}

/// The catalog: the port and its records, and its SQLite and PostgreSQL implementations.
pub mod catalog {
    pub use dbkeep_catalog::{PostgresCatalog, SqliteCatalog};
    pub use dbkeep_model::catalog::*;
}

pub use dbkeep_config::config;
pub use dbkeep_core::{
    discovery, doctor, import, lease, offsite, pitr, restore, retention, runner, scheduler, space,
    twofactor, verdict, verify,
};
pub use dbkeep_engine::{engine, throwaway};
pub use dbkeep_model::{
    cancel, clock, copies, deliveries, discovery as discovered, error, health, instances, leases,
    lock, runlog, storage, stream, text, token, vocab, wal,
};
pub use dbkeep_notify::notify;
pub use dbkeep_pipeline::{crypt, pipeline, watchdog};
pub use dbkeep_service::service;
pub use dbkeep_store::store;
#[cfg(feature = "web")]
pub use dbkeep_web::web;

pub use dbkeep_config::Config;
pub use dbkeep_core::runner::{BackupOptions, BackupOutcome, LeftAlone, Pruned, Runner};
pub use dbkeep_model::error::{Error, Result};
pub use dbkeep_service::service::{Service, ServiceHandle};
