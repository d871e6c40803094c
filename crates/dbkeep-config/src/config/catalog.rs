//! `catalog`: where the record of every attempt lives, a SQLite file on this machine or a
//! PostgreSQL database that several instances share.

use std::path::{Path, PathBuf};

use toml::Spanned;

use dbkeep_model::error::ConfigError;

use super::{ServerTarget, Source, Target};

/// Where the catalog lives.
#[derive(Debug, Clone)]
pub enum CatalogLocation {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database (its password from `catalog_password_env`, the URL, or
    /// `PGPASSWORD`).
    Postgres(ServerTarget),
}

impl CatalogLocation {
    /// How the catalog is named in messages: the file, or the URL without its password.
    pub fn display(&self) -> String {
        match self {
            CatalogLocation::Sqlite(path) => path.display().to_string(),
            CatalogLocation::Postgres(server) => server.url.to_string(),
        }
    }

    /// The SQLite file, for a catalog that is one.
    pub fn sqlite_file(&self) -> Option<&Path> {
        match self {
            CatalogLocation::Sqlite(path) => Some(path),
            CatalogLocation::Postgres(_) => None,
        }
    }

    /// As a path, for the messages that name one.
    pub fn as_path(&self) -> PathBuf {
        PathBuf::from(self.display())
    }
}

/// The `catalog` key (a path, relative to `base`, or a `postgres://` URL) and
/// `catalog_password_env`.
pub(super) fn parse(
    src: &Source<'_>,
    base: &Path,
    catalog: Option<&Spanned<String>>,
    password_env: Option<&Spanned<String>>,
) -> Result<CatalogLocation, ConfigError> {
    let text = catalog.map_or("dbkeep.sqlite3", |c| c.get_ref().as_str());
    let is_url = text.starts_with("postgres://") || text.starts_with("postgresql://");
    if !is_url {
        if let Some(var) = password_env {
            return Err(src.error(
                var.span(),
                "`catalog_password_env` applies only to a catalog on PostgreSQL (`catalog = \"postgres://…\"`); remove it",
            ));
        }
        if text.contains("://") {
            let span = catalog.map_or(0..0, Spanned::span);
            return Err(src.error(
                span,
                "`catalog` must be a SQLite file's path or a postgres://user@host:port/dbname URL",
            ));
        }
        return Ok(CatalogLocation::Sqlite(base.join(text)));
    }
    let span = catalog.map_or(0..0, Spanned::span);
    let Target::Postgres(mut server) = Target::parse(text, base)
        .map_err(|m| src.error(span.clone(), m.replace("`url`", "`catalog`")))?
    else {
        return Err(src.error(span, "`catalog` must be a postgres:// URL"));
    };
    if let Some(var) = password_env {
        if !super::names::is_env_name(var.get_ref()) {
            return Err(src.error(
                var.span(),
                "`catalog_password_env` must be an environment variable name such as DBKEEP_CATALOG_PASSWORD",
            ));
        }
        server.password_env = Some(var.get_ref().clone());
    } else if server.password.is_none() && std::env::var_os("PGPASSWORD").is_some() {
        // As libpq would: the standard variable, when nothing else gives one.
        server.password_env = Some("PGPASSWORD".to_string());
    }
    Ok(CatalogLocation::Postgres(server))
}
