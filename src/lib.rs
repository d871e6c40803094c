//! dbkeep: automatic, verified backups of SQLite, PostgreSQL and MySQL/MariaDB databases.
//!
//! The library does everything; the `dbkeep` binary is a thin command line over it. A backup
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

pub mod accounts;
pub mod cancel;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod crypt;
pub mod engine;
mod error;
pub mod import;
pub mod instance;
pub mod lease;
pub mod lock;
pub mod notify;
pub mod offsite;
pub mod pipeline;
pub mod restore;
pub mod retention;
pub mod runlog;
pub mod runner;
pub mod scheduler;
pub mod service;
pub mod storage;
pub mod store;
pub mod text;
pub mod throwaway;
pub mod verdict;
pub mod verify;
pub mod vocab;
pub mod watchdog;
pub mod web;

pub use config::Config;
pub use error::{Error, Result};
pub use runner::{BackupOptions, BackupOutcome, LeftAlone, Pruned, Runner};
pub use service::{Service, ServiceHandle};
