//! The retention page's calendar: one square per day, a column per ISO week (Monday on top),
//! each day coloured by what retention does to that day's backups at one destination.

use chrono::{Datelike, Duration, NaiveDate, Weekday};

/// The most weeks one calendar draws (about two years); older days are counted, not drawn.
pub const MAX_WEEKS: usize = 105;

/// The most backups one day's tooltip names.
const LINES_PER_DAY: usize = 8;

/// What becomes of one backup at one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// A rule keeps it.
    Keep,
    /// Pinned: kept whatever the policy.
    Pinned,
    /// The policy lets it go: the next prune deletes it.
    Delete,
    /// The policy lets it go, but the prune is held.
    Held,
    /// Already pruned from this destination.
    Gone,
}

/// One backup as the calendar draws it.
#[derive(Debug, Clone)]
pub struct Item {
    /// The day it was taken, in the configured time zone.
    pub day: NaiveDate,
    pub fate: Fate,
    /// What the day's tooltip says of it (file, id, what happens and why).
    pub line: String,
}

/// The colour classes of a day, with their words, in the order the legend shows them.
pub const LEGEND: [(&str, &str); 7] = [
    ("keep", "kept"),
    ("partial", "some kept, some will be pruned"),
    ("prune", "will be pruned"),
    ("held", "prune held"),
    ("pinned", "pinned"),
    ("gone", "pruned earlier"),
    ("none", "no backup"),
];

/// A drawn calendar.
#[derive(Debug)]
pub struct Calendar {
    /// Oldest first.
    pub weeks: Vec<Week>,
    /// Says how many backups are older than the first drawn day, when some are.
    pub older: Option<String>,
    /// The first and last day drawn, `YYYY-MM-DD`.
    pub first: String,
    pub last: String,
}

/// One column: Monday to Sunday.
#[derive(Debug)]
pub struct Week {
    /// The month (and at January or the first label, its year) that begins in this week, or "".
    pub label: String,
    pub days: Vec<Cell>,
}

/// One day.
#[derive(Debug)]
pub struct Cell {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// One of [`LEGEND`]'s classes, or `out` for a day outside the drawn range.
    pub class: &'static str,
    /// The tooltip: the day, what happens, and each backup's line; empty outside the range.
    pub title: String,
}

/// The class of a day with `items` (all taken that day).
fn class_of(items: &[&Item]) -> &'static str {
    let count = |f: Fate| items.iter().filter(|i| i.fate == f).count();
    let (keep, pinned, delete, held, gone) = (
        count(Fate::Keep),
        count(Fate::Pinned),
        count(Fate::Delete),
        count(Fate::Held),
        count(Fate::Gone),
    );
    match () {
        _ if pinned > 0 => "pinned",
        _ if held > 0 => "held",
        _ if delete > 0 && keep > 0 => "partial",
        _ if delete > 0 => "prune",
        _ if keep > 0 => "keep",
        _ if gone > 0 => "gone",
        _ => "none",
    }
}

/// The word of a class, as the legend says it.
fn word_of(class: &str) -> &'static str {
    LEGEND
        .iter()
        .find(|(c, _)| *c == class)
        .map_or("", |(_, w)| w)
}

/// The calendar of `items` (one destination's), from the oldest day to the newest, at most
/// `max_weeks` weeks ending with the newest; `None` when there are no items.
pub fn calendar(items: &[Item], max_weeks: usize) -> Option<Calendar> {
    let newest = items.iter().map(|i| i.day).max()?;
    let oldest = items.iter().map(|i| i.day).min()?;
    let last_sunday =
        newest + Duration::days(6 - i64::from(newest.weekday().num_days_from_monday()));
    let weeks_back = i64::try_from(max_weeks.clamp(1, 10_000)).unwrap_or(1) * 7 - 1;
    let earliest_drawn = last_sunday - Duration::days(weeks_back);
    let start = oldest.max(earliest_drawn);
    let first_monday = start - Duration::days(i64::from(start.weekday().num_days_from_monday()));
    let older: Vec<&Item> = items.iter().filter(|i| i.day < start).collect();
    let mut by_day: std::collections::BTreeMap<NaiveDate, Vec<&Item>> = Default::default();
    for i in items.iter().filter(|i| i.day >= start) {
        by_day.entry(i.day).or_default().push(i);
    }
    let mut weeks = Vec::new();
    let mut monday = first_monday;
    let mut labelled = false;
    while monday <= last_sunday {
        let days: Vec<Cell> = (0..7)
            .map(|d| {
                let day = monday + Duration::days(d);
                let date = day.format("%Y-%m-%d").to_string();
                if day < start || day > newest {
                    return Cell {
                        date,
                        class: "out",
                        title: String::new(),
                    };
                }
                let here = by_day.get(&day).map(Vec::as_slice).unwrap_or_default();
                let class = class_of(here);
                let mut title = format!("{date} {}: {}", weekday(day.weekday()), word_of(class));
                for i in here.iter().take(LINES_PER_DAY) {
                    title.push('\n');
                    title.push_str(&i.line);
                }
                if here.len() > LINES_PER_DAY {
                    title.push_str(&format!(
                        "\n… and {} more (the table lists them)",
                        here.len() - LINES_PER_DAY
                    ));
                }
                Cell { date, class, title }
            })
            .collect();
        // The month that begins this week, or the first drawn week's own.
        let begins = (0..7)
            .map(|d| monday + Duration::days(d))
            .find(|d| d.day() == 1 && *d >= start && *d <= newest);
        let label = match begins {
            Some(d) => Some(d),
            None if weeks.is_empty() && !room_before_next_month(first_monday) => None,
            None if weeks.is_empty() => Some(start),
            None => None,
        }
        .map(|d| {
            let year = !labelled || d.month() == 1;
            labelled = true;
            if year {
                d.format("%b %Y").to_string()
            } else {
                d.format("%b").to_string()
            }
        })
        .unwrap_or_default();
        weeks.push(Week { label, days });
        monday += Duration::days(7);
    }
    Some(Calendar {
        weeks,
        older: older.iter().map(|i| i.day).min().map(|from| {
            format!(
                "{} older backup{} (from {from}) {} not drawn; the table lists {}.",
                older.len(),
                if older.len() == 1 { "" } else { "s" },
                if older.len() == 1 { "is" } else { "are" },
                if older.len() == 1 { "it" } else { "them" },
            )
        }),
        first: start.format("%Y-%m-%d").to_string(),
        last: newest.format("%Y-%m-%d").to_string(),
    })
}

/// Whether the first drawn week's label ("Mar 2026", about four columns wide) fits before
/// the next month's, for a first column starting on Monday `start`.
fn room_before_next_month(start: NaiveDate) -> bool {
    let next = NaiveDate::from_ymd_opt(
        if start.month() == 12 {
            start.year() + 1
        } else {
            start.year()
        },
        start.month() % 12 + 1,
        1,
    );
    // The next month's label is in the fifth column or later.
    next.is_none_or(|n| (n - start).num_days() >= 28)
}

/// A day's short name.
fn weekday(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "Mon",
        Weekday::Tue => "Tue",
        Weekday::Wed => "Wed",
        Weekday::Thu => "Thu",
        Weekday::Fri => "Fri",
        Weekday::Sat => "Sat",
        Weekday::Sun => "Sun",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn item(d: &str, fate: Fate) -> Item {
        Item {
            day: day(d),
            fate,
            line: format!("backup of {d}"),
        }
    }

    fn cell<'a>(c: &'a Calendar, date: &str) -> &'a Cell {
        c.weeks
            .iter()
            .flat_map(|w| &w.days)
            .find(|c| c.date == date)
            .unwrap()
    }

    #[test]
    fn weeks_run_monday_to_sunday_from_the_oldest_day_to_the_newest() {
        // 2026-11-04 is a Wednesday, 2026-11-17 a Tuesday.
        let items = [
            item("2026-11-04", Fate::Delete),
            item("2026-11-10", Fate::Keep),
            item("2026-11-17", Fate::Pinned),
        ];
        let c = calendar(&items, MAX_WEEKS).unwrap();
        assert_eq!(c.weeks.len(), 3);
        assert!(c.weeks.iter().all(|w| w.days.len() == 7));
        assert_eq!(c.weeks[0].days[0].date, "2026-11-02");
        assert_eq!(c.weeks[2].days[6].date, "2026-11-22");
        assert_eq!(cell(&c, "2026-11-02").class, "out");
        assert_eq!(cell(&c, "2026-11-02").title, "");
        assert_eq!(cell(&c, "2026-11-04").class, "prune");
        assert_eq!(cell(&c, "2026-11-05").class, "none");
        assert_eq!(cell(&c, "2026-11-05").title, "2026-11-05 Thu: no backup");
        assert_eq!(cell(&c, "2026-11-10").class, "keep");
        assert_eq!(
            cell(&c, "2026-11-17").title,
            "2026-11-17 Tue: pinned\nbackup of 2026-11-17"
        );
        assert_eq!(cell(&c, "2026-11-18").class, "out");
        assert_eq!(
            (c.first.as_str(), c.last.as_str()),
            ("2026-11-04", "2026-11-17")
        );
        assert_eq!(c.older, None);
        assert_eq!(c.weeks[0].label, "Nov 2026");
    }

    #[test]
    fn a_day_shows_what_matters_most_among_its_backups() {
        let d = "2026-11-04";
        let class = |fates: &[Fate]| {
            let items: Vec<Item> = fates.iter().map(|f| item(d, *f)).collect();
            let refs: Vec<&Item> = items.iter().collect();
            class_of(&refs)
        };
        assert_eq!(class(&[Fate::Keep, Fate::Pinned, Fate::Delete]), "pinned");
        assert_eq!(class(&[Fate::Keep, Fate::Held]), "held");
        assert_eq!(class(&[Fate::Keep, Fate::Delete]), "partial");
        assert_eq!(class(&[Fate::Delete, Fate::Delete]), "prune");
        assert_eq!(class(&[Fate::Keep, Fate::Gone]), "keep");
        assert_eq!(class(&[Fate::Gone]), "gone");
        assert_eq!(class(&[]), "none");
    }

    #[test]
    fn a_long_history_draws_its_last_weeks_and_counts_the_rest() {
        let items: Vec<Item> = (0..1000)
            .map(|n| Item {
                day: day("2024-01-01") + Duration::days(n),
                fate: Fate::Keep,
                line: String::new(),
            })
            .collect();
        let c = calendar(&items, 10).unwrap();
        assert_eq!(c.weeks.len(), 10);
        let older = c.older.unwrap();
        assert!(older.contains("from 2024-01-01"), "{older}");
        assert!(
            older.ends_with("are not drawn; the table lists them."),
            "{older}"
        );
    }

    #[test]
    fn a_busy_day_names_its_first_backups_and_counts_the_others() {
        let items: Vec<Item> = (0..20).map(|_| item("2026-11-04", Fate::Delete)).collect();
        let c = calendar(&items, MAX_WEEKS).unwrap();
        let title = &cell(&c, "2026-11-04").title;
        assert_eq!(title.lines().count(), 1 + LINES_PER_DAY + 1, "{title}");
        assert!(
            title.ends_with("… and 12 more (the table lists them)"),
            "{title}"
        );
    }

    #[test]
    fn months_are_labelled_where_they_begin_with_the_year_at_january() {
        let items = [
            item("2025-11-20", Fate::Keep),
            item("2026-02-10", Fate::Keep),
        ];
        let c = calendar(&items, MAX_WEEKS).unwrap();
        let labels: Vec<&str> = c
            .weeks
            .iter()
            .map(|w| w.label.as_str())
            .filter(|l| !l.is_empty())
            .collect();
        // 2025-11-20 is too close to December for a label of its own.
        assert_eq!(labels, ["Dec 2025", "Jan 2026", "Feb"]);
        // From Monday 2026-08-10, September begins in the fourth column: no room either.
        let c = calendar(
            &[
                item("2026-08-10", Fate::Keep),
                item("2026-09-20", Fate::Keep),
            ],
            MAX_WEEKS,
        )
        .unwrap();
        assert_eq!(c.weeks[0].label, "");
        assert_eq!(c.weeks[3].label, "Sep 2026");
        // From Monday 2026-08-03, in the fifth: room.
        let c = calendar(
            &[
                item("2026-08-03", Fate::Keep),
                item("2026-09-20", Fate::Keep),
            ],
            MAX_WEEKS,
        )
        .unwrap();
        assert_eq!(c.weeks[0].label, "Aug 2026");
        assert_eq!(c.weeks[4].label, "Sep");
    }

    #[test]
    fn no_items_no_calendar() {
        assert!(calendar(&[], MAX_WEEKS).is_none());
    }
}
