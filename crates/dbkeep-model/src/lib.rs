//! dbkeep's model: the words every layer shares. Errors, the vocabulary (kinds, statuses,
//! compressions, events), the records the catalog keeps and the ports (traits) it is reached
//! through, the clock, cancellation, the stream contract between engines, pipeline and stores,
//! and file safety (private files, temporaries, publication by rename). Nothing here knows a
//! database server, a configuration file or the network.

pub mod accounts;
pub mod audit;
pub mod cancel;
pub mod catalog;
pub mod clock;
pub mod copies;
pub mod deliveries;
pub mod discovery;
pub mod error;
pub mod grant;
pub mod health;
pub mod instances;
pub mod leases;
pub mod lock;
pub mod runlog;
pub mod storage;
pub mod stream;
pub mod text;
pub mod token;
pub mod vocab;
pub mod wal;

pub use error::{ConfigError, Error, Result};
