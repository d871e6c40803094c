//! Reads about every database at once, for pages and metrics: one request to the server
//! however many databases are configured (SQLite, in process, reads each database in turn).

use crate::postgres::PostgresCatalog;
use crate::postgres_rows::{VERIFICATION, columns, listed, verification};
use dbkeep_model::catalog::{Listed, Status, Verification};
use dbkeep_model::error::Result;

impl PostgresCatalog {
    /// [`super::Catalog::recent_of_each`] in one query: each database's newest rows through
    /// its index, read or not.
    pub(super) fn recent_of_each_at_once(
        &self,
        databases: &[String],
        status: Option<Status>,
        per: u32,
    ) -> Result<Vec<Listed>> {
        let status = status.map(Status::as_str);
        let per = i64::from(per);
        let sql = format!(
            "SELECT {} FROM unnest($1::text[]) WITH ORDINALITY AS wanted(name, n) \
             CROSS JOIN LATERAL (SELECT * FROM backups WHERE backups.database = wanted.name \
               AND ($2::text IS NULL OR backups.status = $2) ORDER BY backups.id DESC LIMIT $3) AS backups \
             ORDER BY wanted.n, backups.id DESC",
            columns()
        );
        self.rows(&sql, &[&databases, &status, &per], listed)
    }

    /// [`super::Catalog::last_verifications`] in one query.
    pub(super) fn last_verifications_at_once(
        &self,
        databases: &[String],
        ok_only: bool,
    ) -> Result<Vec<(String, Verification)>> {
        let sql = format!(
            "SELECT DISTINCT ON (b.database) {VERIFICATION}, b.database \
             FROM verifications v JOIN backups b ON b.id = v.backup_id \
             WHERE b.database = ANY($1) AND (NOT $2::boolean OR v.status = 'ok') \
             ORDER BY b.database, v.id DESC"
        );
        self.rows(&sql, &[&databases, &ok_only], |r| {
            // The database comes after the verification's columns.
            let database: String = r.try_get(8)?;
            Ok((database, verification(r)?))
        })
    }
}
