//! dbkeep's core: what a backup tool does, synchronously. The runner (backup, prune, recover,
//! off-site sync), restore, import, verification, retention, the verdict on each database's
//! health, the space its backups use, the scheduler's plan, leases, the password hashing of
//! accounts and the audit log's writer.

pub mod audit;
pub mod discovery;
pub mod doctor;
pub mod import;
pub mod lease;
pub mod offsite;
pub mod passwords;
pub mod pitr;
pub mod restore;
pub mod retention;
pub mod runner;
pub mod scheduler;
pub mod space;
pub mod twofactor;
pub mod verdict;
pub mod verify;

pub use runner::{BackupOptions, BackupOutcome, LeftAlone, Pruned, Runner};
