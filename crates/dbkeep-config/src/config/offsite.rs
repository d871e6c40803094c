//! `[[offsite]]`: the destinations every new backup is copied to (3-2-1).

use serde::Deserialize;
use toml::Spanned;

use dbkeep_model::error::ConfigError;

use super::Source;
use super::retention::{RetentionKeys, raw_retention_of};

/// One off-site destination.
#[derive(Debug, Clone)]
pub struct Offsite {
    /// Its name: letters, digits, `-` and `_`.
    pub name: String,
    /// `s3://bucket/prefix`, `az://container/prefix`, `gs://bucket/prefix` or `file:///path`.
    pub url: url::Url,
    /// Options for the store: `endpoint` (MinIO, R2, B2, Ceph, …), `region`, `allow_http`.
    pub options: Vec<(String, String)>,
    /// Only these databases (all when empty).
    pub databases: Vec<String>,
    /// Its own retention policy, when its entry sets retention keys: then every database's
    /// copies here follow it (unless the database says otherwise for this destination);
    /// without, each database's copies follow that database's policy.
    pub retention: Option<RetentionKeys>,
}

impl Offsite {
    /// Whether `database`'s backups are copied here.
    pub fn takes(&self, database: &str) -> bool {
        self.databases.is_empty() || self.databases.iter().any(|d| d == database)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOffsite {
    name: Spanned<String>,
    url: Spanned<String>,
    endpoint: Option<Spanned<String>>,
    region: Option<String>,
    #[serde(default)]
    databases: Vec<Spanned<String>>,
    retention_days: Option<Spanned<u32>>,
    keep_last: Option<Spanned<u32>>,
    keep_hourly: Option<Spanned<u32>>,
    keep_daily: Option<Spanned<u32>>,
    keep_weekly: Option<Spanned<u32>>,
    keep_monthly: Option<Spanned<u32>>,
    keep_yearly: Option<Spanned<u32>>,
}

impl RawOffsite {
    pub(super) fn validate(
        self,
        src: &Source<'_>,
        base: &std::path::Path,
        known: &[String],
    ) -> Result<Offsite, ConfigError> {
        let name = self.name.get_ref();
        if !super::names::is_name(name) {
            return Err(src.error(
                self.name.span(),
                format!("offsite `name = \"{name}\"` is invalid: use 1 to 64 letters, digits, `-` or `_`"),
            ));
        }
        if name == "local" {
            return Err(src.error(
                self.name.span(),
                "offsite `name = \"local\"` is taken by the local backup folder: choose another name",
            ));
        }
        let raw_retention = raw_retention_of!(self);
        let retention = if raw_retention.is_set() {
            Some(raw_retention.check(src, &format!("of offsite `{name}`"))?)
        } else {
            None
        };
        let text = self.url.get_ref();
        let url = match url::Url::parse(text) {
            Ok(u) if matches!(u.scheme(), "s3" | "az" | "gs" | "file") => u,
            // A relative or absolute path is a folder on another disk.
            _ if !text.contains("://") => {
                let path = base.join(text);
                url::Url::from_directory_path(&path).map_err(|()| {
                    src.error(
                        self.url.span(),
                        format!("`url` of offsite `{name}`: `{text}` is not a usable path"),
                    )
                })?
            }
            _ => {
                return Err(src.error(
                    self.url.span(),
                    format!("`url` of offsite `{name}` must be s3://bucket/prefix, az://container/prefix, gs://bucket/prefix or file:///path"),
                ));
            }
        };
        if url.password().is_some() || url.query().is_some_and(|q| q.contains("secret")) {
            return Err(src.error(
                self.url.span(),
                format!("`url` of offsite `{name}` must not hold credentials: use the provider's environment variables (AWS_ACCESS_KEY_ID, …)"),
            ));
        }
        let mut options = Vec::new();
        if let Some(endpoint) = &self.endpoint {
            let parsed = url::Url::parse(endpoint.get_ref()).map_err(|e| {
                src.error(
                    endpoint.span(),
                    format!("`endpoint` of offsite `{name}` is not a URL ({e})"),
                )
            })?;
            if parsed.scheme() == "http" {
                options.push(("allow_http".to_string(), "true".to_string()));
            }
            options.push(("endpoint".to_string(), endpoint.get_ref().clone()));
        }
        if let Some(region) = self.region {
            if url.scheme() != "s3" {
                return Err(src.error(
                    self.url.span(),
                    format!(
                        "`region` of offsite `{name}` applies only to s3:// destinations: remove it"
                    ),
                ));
            }
            options.push(("region".to_string(), region));
        }
        let mut databases = Vec::new();
        for d in self.databases {
            if !known.contains(d.get_ref()) {
                return Err(src.error(
                    d.span(),
                    format!(
                        "`databases` of offsite `{name}`: no database named `{}`",
                        d.get_ref()
                    ),
                ));
            }
            databases.push(d.into_inner());
        }
        Ok(Offsite {
            name: self.name.into_inner(),
            url,
            options,
            databases,
            retention,
        })
    }
}
