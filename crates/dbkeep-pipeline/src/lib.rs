//! dbkeep's byte pipeline: from an engine's stream to a stored file (row tap, compression,
//! age encryption, SHA-256) and back (checked decryption and decompression, the SQL filter a
//! restore reads through), plus the stall watchdog. Every stage streams; nothing holds a dump.

pub mod crypt;
pub mod pipeline;
pub mod watchdog;
