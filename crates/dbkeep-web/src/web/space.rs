//! The overview's Space box: what each database's backups use at each destination, how that
//! changed over the last 30 days, and the local folder's free space and forecast.

use dbkeep_core::space::{FILLING_WITHIN_DAYS, Forecast, Space, signed_size};

/// Up to this many databases the box has a row per database and destination; with more, one
/// per destination for all of them (`dbkeep status` lists each).
pub const ROWS_PER_DATABASE_UP_TO: usize = 12;

/// The Space box.
pub struct SpaceBox {
    /// The local backup folder.
    pub dir: String,
    /// `40.00 GiB free, full in about 90 days`.
    pub disk: String,
    /// `red` when full within a week, `orange` within two, `green` otherwise, `grey` unknown.
    pub colour: &'static str,
    /// The rows, by database then destination.
    pub rows: Vec<SpaceRow>,
    /// Whether each row sums every database (there are many).
    pub totals: bool,
}

/// One row of the box: one database (or all) at one destination.
pub struct SpaceRow {
    /// The database, or `all 151` for a row of totals.
    pub database: String,
    /// `local`, or an `[[offsite]]` destination's name.
    pub destination: String,
    /// How many backups it holds.
    pub backups: u64,
    /// Their bytes, in binary units.
    pub size: String,
    /// `+300.00 MiB`.
    pub growth: String,
}

/// The box for `space`.
pub fn space_box(space: &Space) -> SpaceBox {
    let row = |database: &str, destination: &str, backups: u64, bytes: u64, growth: i64| SpaceRow {
        database: database.to_string(),
        destination: destination.to_string(),
        backups,
        size: indicatif::HumanBytes(bytes).to_string(),
        growth: signed_size(growth),
    };
    let totals = space.databases.len() > ROWS_PER_DATABASE_UP_TO;
    let rows = if totals {
        // Per destination, in the order each first appears.
        let mut sums: Vec<(&str, u64, u64, i64)> = Vec::new();
        for u in space.databases.iter().flat_map(|d| &d.destinations) {
            match sums.iter_mut().find(|s| s.0 == u.destination) {
                Some(s) => {
                    s.1 += u.backups;
                    s.2 += u.bytes;
                    s.3 = s.3.saturating_add(u.growth_30d_bytes);
                }
                None => sums.push((&u.destination, u.backups, u.bytes, u.growth_30d_bytes)),
            }
        }
        let all = format!("all {}", space.databases.len());
        sums.into_iter()
            .map(|(d, n, b, g)| row(&all, d, n, b, g))
            .collect()
    } else {
        space
            .databases
            .iter()
            .flat_map(|d| {
                d.destinations.iter().map(|u| {
                    row(
                        &d.database,
                        &u.destination,
                        u.backups,
                        u.bytes,
                        u.growth_30d_bytes,
                    )
                })
            })
            .collect()
    };
    let colour = match space.disk.forecast {
        Forecast::Unknown => "grey",
        f if f.full_within(FILLING_WITHIN_DAYS) => "red",
        f if f.full_within(2.0 * FILLING_WITHIN_DAYS) => "orange",
        _ => "green",
    };
    SpaceBox {
        dir: space.disk.dir.display().to_string(),
        disk: space.disk.summary(),
        colour,
        rows,
        totals,
    }
}
