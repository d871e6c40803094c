//! Cron expressions checked field by field, so a mistake is named in dbkeep's words ("the
//! minute field `61` is out of range 0–59") rather than the parser's; and when a schedule
//! fires, in its time zone.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// The first instant strictly after `after` at which `cron`, read in zone `tz`, fires.
///
/// Wall-clock times that do not exist (spring forward) fire once at the first instant after
/// the gap; times that occur twice (fall back) fire once, at the first occurrence.
pub fn next_fire(cron: &Cron, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = after.with_timezone(&tz);
    cron.find_next_occurrence(&local, false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The latest instant at or before `at` at which `cron` fires in zone `tz`.
pub fn previous_fire(cron: &Cron, tz: Tz, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = at.with_timezone(&tz);
    cron.find_previous_occurrence(&local, true)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// One field of a cron expression: its name, its range, and the names it accepts.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const SECOND: Field = Field {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
};
const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: MONTHS,
};
const WEEKDAY: Field = Field {
    name: "weekday",
    min: 0,
    max: 7,
    names: DAYS,
};

/// What is wrong with the fields of `expr` (5 or 6 fields; `@daily` and the like are left to
/// the parser), if anything that this check knows of.
pub fn problem(expr: &str) -> Option<String> {
    let parts: Vec<&str> = expr.split_whitespace().collect();
    let fields: &[Field] = match parts.len() {
        5 => &[MINUTE, HOUR, DAY, MONTH, WEEKDAY],
        6 => &[SECOND, MINUTE, HOUR, DAY, MONTH, WEEKDAY],
        _ => return None,
    };
    parts.iter().zip(fields).find_map(|(text, field)| {
        check(text, field).map(|why| format!("the {} field `{text}` {why}", field.name))
    })
}

fn check(text: &str, field: &Field) -> Option<String> {
    for item in text.split(',') {
        if item.is_empty() {
            return Some("has an empty list item".into());
        }
        // Day-of-month and weekday extensions (`L`, `15W`, `5#2`, `?`) are left to the parser.
        if item.contains(['?', 'L', 'W', '#']) {
            continue;
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step {
            match step.parse::<u32>() {
                Ok(n) if n >= 1 => {}
                _ => {
                    return Some(format!(
                        "has step `/{step}`; a step is a whole number of 1 or more"
                    ));
                }
            }
        }
        if range == "*" {
            continue;
        }
        let bounds: Vec<&str> = range.splitn(2, '-').collect();
        let mut values = Vec::new();
        for bound in &bounds {
            match value(bound, field) {
                Some(v) if (field.min..=field.max).contains(&v) => values.push(v),
                Some(_) => {
                    return Some(format!(
                        "is out of range: {} values go from {} to {}",
                        field.name, field.min, field.max
                    ));
                }
                None => {
                    let names = if field.names.is_empty() {
                        String::new()
                    } else {
                        format!(" or a name such as {}", field.names[0])
                    };
                    return Some(format!(
                        "is not a number{names}, a range (a-b), `*` or a step (`*/n`)"
                    ));
                }
            }
        }
        if let [from, to] = values[..]
            && from > to
        {
            return Some(format!(
                "has the range {range} backwards; write the smaller value first"
            ));
        }
    }
    None
}

fn value(text: &str, field: &Field) -> Option<u32> {
    text.parse::<u32>().ok().or_else(|| {
        let upper = text.to_ascii_uppercase();
        let offset = if field.names.len() == 12 { 1 } else { 0 };
        field
            .names
            .iter()
            .position(|n| *n == upper)
            .map(|i| i as u32 + offset)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mistakes_are_named_by_field() {
        for (expr, want) in [
            (
                "61 * * * *",
                Some("the minute field `61` is out of range: minute values go from 0 to 59"),
            ),
            (
                "0 24 * * *",
                Some("the hour field `24` is out of range: hour values go from 0 to 23"),
            ),
            (
                "0 0 0 * *",
                Some(
                    "the day-of-month field `0` is out of range: day-of-month values go from 1 to 31",
                ),
            ),
            (
                "0 0 * 13 *",
                Some("the month field `13` is out of range: month values go from 1 to 12"),
            ),
            (
                "0 0 * * FUNDAY",
                Some(
                    "the weekday field `FUNDAY` is not a number or a name such as SUN, a range (a-b), `*` or a step (`*/n`)",
                ),
            ),
            (
                "*/0 * * * *",
                Some("the minute field `*/0` has step `/0`; a step is a whole number of 1 or more"),
            ),
            (
                "0 5-2 * * *",
                Some(
                    "the hour field `5-2` has the range 5-2 backwards; write the smaller value first",
                ),
            ),
            (
                "60 0 0 * * *",
                Some("the second field `60` is out of range: second values go from 0 to 59"),
            ),
            ("0 0 * * *", None),
            ("*/15 9-17 * JAN-MAR MON-FRI", None),
            ("0 0 L * *", None),
            ("0 0 * * 5#2", None),
            ("@daily", None),
        ] {
            assert_eq!(problem(expr).as_deref(), want, "{expr}");
        }
    }
}
