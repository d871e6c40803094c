//! dbkeep's configuration: the TOML file read, environment overrides applied, every value
//! validated once, and each problem named by file, line and key. Also the cron schedules'
//! arithmetic, which validation needs.

pub mod config;

pub use config::Config;
