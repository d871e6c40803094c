//! dbkeep's engines: how each kind of database (SQLite, PostgreSQL, MySQL/MariaDB) is dumped,
//! loaded, counted and checked, through the standard tools, with secrets passed by environment
//! only. Engines write to and read from streams; they know neither the catalog nor the stores.

pub mod engine;
pub mod throwaway;

pub use engine::Engine;
