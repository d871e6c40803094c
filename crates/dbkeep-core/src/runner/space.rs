//! The space report of this configuration's backups: read from the catalog (kept until it
//! changes) and from the file system of the backup folder.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::Runner;
use crate::space::{self, Holding, Layout, LocalFile, Space};
use dbkeep_model::catalog::{ListFilter, Status};
use dbkeep_model::error::Result;
use dbkeep_model::storage;

impl Runner {
    /// What each configured database's backups use at each destination, their growth over
    /// the last 30 days, and the local folder's free space and forecast, at `now`
    /// ([`crate::space`] says how each is counted). Only this configuration's own backups
    /// count ([`Runner::owns`]); local files only when on this instance's disk
    /// ([`Runner::on_this_disk`]).
    ///
    /// # Errors
    /// When the catalog cannot be read. A free space that cannot be read is no error: the
    /// report says it is unknown.
    pub fn space(&self, now: DateTime<Utc>) -> Result<Space> {
        let holdings = self.holdings(now)?;
        let layouts: Vec<Layout> = self
            .config()
            .databases
            .iter()
            .map(|db| Layout {
                database: db.name.clone(),
                offsite: self.offsite_names(&db.name),
            })
            .collect();
        let dir = &self.config().backup_dir;
        let free = match storage::free_space(dir) {
            Ok(free) => Some(free),
            Err(e) => {
                tracing::debug!(dir = %dir.display(), error = %e, "cannot read the free space of the backup folder");
                None
            }
        };
        Ok(space::report(&holdings, &layouts, now, dir.clone(), free))
    }

    /// Every successful backup of this configuration, as the report reads it: from the cache
    /// while the catalog's change stamp stays.
    fn holdings(&self, now: DateTime<Utc>) -> Result<Arc<Vec<Holding>>> {
        let stamp = self.catalog.change_stamp()?;
        if let Some(kept) = self.holdings.get(stamp, now) {
            return Ok(kept);
        }
        let records = self.catalog.list(&ListFilter {
            status: Some(Status::Success),
            ..ListFilter::default()
        })?;
        let mut offsite = std::collections::HashMap::new();
        let holdings = records
            .iter()
            .filter(|r| self.owns(r))
            .filter_map(|r| {
                let local = if !self.on_this_disk(r) {
                    LocalFile::Elsewhere
                } else if self
                    .config()
                    .database(&r.database)
                    .is_ok_and(|d| d.keep_local)
                {
                    LocalFile::Kept
                } else {
                    let names: &Vec<String> = offsite
                        .entry(r.database.clone())
                        .or_insert_with(|| self.offsite_names(&r.database));
                    return Holding::of(r, LocalFile::UntilCopiedTo(names));
                };
                Holding::of(r, local)
            })
            .collect();
        Ok(self.holdings.keep(stamp, now, holdings))
    }

    /// The `[[offsite]]` destinations that take `database`, in configuration order.
    fn offsite_names(&self, database: &str) -> Vec<String> {
        self.config()
            .offsite
            .iter()
            .filter(|o| o.takes(database))
            .map(|o| o.name.clone())
            .collect()
    }
}
