//! dbkeep's catalogs: the [`dbkeep_model::catalog::Catalog`] port and its parts, kept in a
//! SQLite file ([`sqlite::SqliteCatalog`]) or in a PostgreSQL database that several instances
//! share ([`postgres::PostgresCatalog`]). Both run the same stories in their tests.

mod columns;
pub mod postgres;
mod postgres_accounts;
mod postgres_audit;
mod postgres_batch;
mod postgres_connect;
mod postgres_copies;
mod postgres_discovery;
mod postgres_import;
mod postgres_leases;
mod postgres_notify;
mod postgres_rows;
mod postgres_tls;
mod postgres_wal;
pub mod sqlite;
mod sqlite_accounts;
mod sqlite_audit;
mod sqlite_copies;
mod sqlite_discovery;
mod sqlite_leases;
mod sqlite_notify;
mod sqlite_wal;
#[cfg(test)]
mod story;

pub use postgres::PostgresCatalog;
pub use sqlite::SqliteCatalog;
