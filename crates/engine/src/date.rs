//! Calendar dates for the date operators of FetchXML and `$filter` and for aggregates' date
//! groupings (D163, D164): a date is the `YYYY-MM-DD` that ISO 8601 text starts with
//! (`2026-12-04`, `2026-12-04T10:00:00Z`), read as written (no time zone is applied).

use crate::{CompareOp, Filter, Value};

/// A day of the proleptic Gregorian calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// The year (0–9999).
    pub year: i64,
    /// The month (1–12).
    pub month: u32,
    /// The day of the month (1–31).
    pub day: u32,
}

impl Date {
    /// The date ISO 8601 text starts with, if it is one.
    #[must_use]
    pub fn parse(text: &str) -> Option<Date> {
        let bytes = text.as_bytes();
        if bytes.len() < 10
            || bytes[4] != b'-'
            || bytes[7] != b'-'
            || !bytes[..4].iter().all(u8::is_ascii_digit)
        {
            return None;
        }
        let year: i64 = text.get(..4)?.parse().ok()?;
        let month: u32 = text.get(5..7)?.parse().ok()?;
        let day: u32 = text.get(8..10)?.parse().ok()?;
        if bytes.get(10).is_some_and(|b| b.is_ascii_digit()) {
            return None;
        }
        let date = Date { year, month, day };
        ((1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month)).then_some(date)
    }

    /// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
    #[must_use]
    pub fn days(self) -> i64 {
        let y = if self.month <= 2 {
            self.year - 1
        } else {
            self.year
        };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` after 1970-01-01 (Hinnant's `civil_from_days`).
    #[must_use]
    pub fn from_days(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
        let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
        let year = yoe + era * 400 + i64::from(month <= 2);
        Date { year, month, day }
    }

    /// `n` days later (earlier when negative).
    #[must_use]
    pub fn add_days(self, n: i64) -> Date {
        Date::from_days(self.days() + n)
    }

    /// `n` months later, the day kept within the month (Jan 31 + 1 month = Feb 28/29).
    #[must_use]
    pub fn add_months(self, n: i64) -> Date {
        let months = self.year * 12 + i64::from(self.month) - 1 + n;
        let year = months.div_euclid(12);
        let month = u32::try_from(months.rem_euclid(12) + 1).unwrap_or(1);
        Date {
            year,
            month,
            day: self.day.min(days_in_month(year, month)),
        }
    }

    /// The first day of its month.
    #[must_use]
    pub fn month_start(self) -> Date {
        Date { day: 1, ..self }
    }

    /// The first day of its year.
    #[must_use]
    pub fn year_start(self) -> Date {
        Date {
            month: 1,
            day: 1,
            ..self
        }
    }

    /// The Monday of its ISO 8601 week.
    #[must_use]
    pub fn week_start(self) -> Date {
        self.add_days(1 - i64::from(self.weekday()))
    }

    /// The ISO 8601 day of the week: Monday 1 … Sunday 7.
    #[must_use]
    pub fn weekday(self) -> u32 {
        u32::try_from((self.days() + 3).rem_euclid(7) + 1).unwrap_or(1)
    }

    /// The ISO 8601 week of the year (1–53).
    #[must_use]
    pub fn iso_week(self) -> u32 {
        let ordinal = self.days() - self.year_start().days() + 1;
        let weeks_in = |year: i64| {
            let jan1 = Date {
                year,
                month: 1,
                day: 1,
            }
            .weekday();
            if jan1 == 4 || (jan1 == 3 && is_leap(year)) {
                53
            } else {
                52
            }
        };
        let week = (ordinal - i64::from(self.weekday()) + 10) / 7;
        let week = if week < 1 {
            weeks_in(self.year - 1)
        } else if week > weeks_in(self.year) {
            1
        } else {
            week
        };
        u32::try_from(week).unwrap_or(1)
    }
}

impl Date {
    /// Today in UTC, by the system clock.
    #[must_use]
    pub fn today() -> Date {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Date::from_days(i64::try_from(secs / 86_400).unwrap_or(0))
    }
}

/// The largest count a `last-x-…`, `next-x-…` or `olderthan-x-…` operator takes.
pub const MAX_DATE_COUNT: i64 = 100_000;

/// The least text a date starts with.
const FIRST_DATE: &str = "0";

/// Text past every date (`:` follows `9`).
const PAST_DATES: &str = ":";

/// The days a date operator keeps (D164): half-open ranges of `YYYY-MM-DD` text, which ISO
/// 8601 values (`2026-12-04T10:00:00Z`) compare against as text. Every range is bounded on
/// both sides, by `"0"` and `":"` when open: a value that is not a date (text that does not
/// start with a digit, a number) falls in none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Days {
    /// From the first day up to (not including) the second.
    Within(Date, Date),
    /// Before the first day or from the second on.
    Outside(Date, Date),
    /// From the day on.
    From(Date),
    /// Before the day.
    Before(Date),
}

impl Days {
    /// The days of a FetchXML date operator (`today`, `last-x-days`, `on-or-after`, …) with its
    /// value, from `today`; `Ok(None)` when `operator` is none of them; `Err` names what is
    /// wrong with the value.
    pub fn of(operator: &str, value: Option<&str>, today: Date) -> Result<Option<Days>, String> {
        let t = today;
        let value = value.map(str::trim).filter(|v| !v.is_empty());
        let fixed = |start: Date, end: Date| match value {
            None => Ok(Some(Days::Within(start, end))),
            Some(_) => Err(format!("the `{operator}` operator takes no value")),
        };
        let count = || -> Result<i64, String> {
            let v = value.ok_or_else(|| format!("the `{operator}` operator takes one value"))?;
            v.parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_DATE_COUNT).contains(n))
                .ok_or_else(|| {
                    format!(
                        "the `{operator}` operator takes a whole number from 1 to {MAX_DATE_COUNT}, not `{v}`"
                    )
                })
        };
        let date = || -> Result<Date, String> {
            let v = value.ok_or_else(|| format!("the `{operator}` operator takes one value"))?;
            Date::parse(v).ok_or_else(|| {
                format!("the `{operator}` operator takes a date (`2026-12-04`), not `{v}`")
            })
        };
        let (week, month, year) = (t.week_start(), t.month_start(), t.year_start());
        let tomorrow = t.add_days(1);
        let within = |a: Date, b: Date| Ok(Some(Days::Within(a, b)));
        match operator {
            "today" => fixed(t, tomorrow),
            "yesterday" => fixed(t.add_days(-1), t),
            "tomorrow" => fixed(tomorrow, t.add_days(2)),
            "last-seven-days" => fixed(t.add_days(-7), tomorrow),
            "next-seven-days" => fixed(t, t.add_days(8)),
            "last-week" => fixed(week.add_days(-7), week),
            "this-week" => fixed(week, week.add_days(7)),
            "next-week" => fixed(week.add_days(7), week.add_days(14)),
            "last-month" => fixed(month.add_months(-1), month),
            "this-month" => fixed(month, month.add_months(1)),
            "next-month" => fixed(month.add_months(1), month.add_months(2)),
            "last-year" => fixed(year.add_months(-12), year),
            "this-year" => fixed(year, year.add_months(12)),
            "next-year" => fixed(year.add_months(12), year.add_months(24)),
            "last-x-days" => within(t.add_days(-count()?), tomorrow),
            "next-x-days" => within(t, t.add_days(count()? + 1)),
            "last-x-weeks" => within(t.add_days(-7 * count()?), tomorrow),
            "next-x-weeks" => within(t, t.add_days(7 * count()? + 1)),
            "last-x-months" => within(t.add_months(-count()?), tomorrow),
            "next-x-months" => within(t, t.add_months(count()?).add_days(1)),
            "last-x-years" => within(t.add_months(-12 * count()?), tomorrow),
            "next-x-years" => within(t, t.add_months(12 * count()?).add_days(1)),
            "olderthan-x-days" => Ok(Some(Days::Before(t.add_days(-count()?)))),
            "olderthan-x-weeks" => Ok(Some(Days::Before(t.add_days(-7 * count()?)))),
            "olderthan-x-months" => Ok(Some(Days::Before(t.add_months(-count()?)))),
            "olderthan-x-years" => Ok(Some(Days::Before(t.add_months(-12 * count()?)))),
            "on" => {
                let d = date()?;
                within(d, d.add_days(1))
            }
            "not-on" => {
                let d = date()?;
                Ok(Some(Days::Outside(d, d.add_days(1))))
            }
            "on-or-after" => Ok(Some(Days::From(date()?))),
            "on-or-before" => Ok(Some(Days::Before(date()?.add_days(1)))),
            _ => Ok(None),
        }
    }

    /// The FetchXML operator of a `$filter` query function's name
    /// (`Microsoft.Dynamics.CRM.LastXDays` → `last-x-days`), if it is a date operator's.
    #[must_use]
    pub fn operator_of_function(function: &str) -> Option<&'static str> {
        let name = function.strip_prefix("microsoft.dynamics.crm.")?;
        Some(match name {
            "today" => "today",
            "yesterday" => "yesterday",
            "tomorrow" => "tomorrow",
            "last7days" => "last-seven-days",
            "next7days" => "next-seven-days",
            "lastweek" => "last-week",
            "thisweek" => "this-week",
            "nextweek" => "next-week",
            "lastmonth" => "last-month",
            "thismonth" => "this-month",
            "nextmonth" => "next-month",
            "lastyear" => "last-year",
            "thisyear" => "this-year",
            "nextyear" => "next-year",
            "lastxdays" => "last-x-days",
            "nextxdays" => "next-x-days",
            "lastxweeks" => "last-x-weeks",
            "nextxweeks" => "next-x-weeks",
            "lastxmonths" => "last-x-months",
            "nextxmonths" => "next-x-months",
            "lastxyears" => "last-x-years",
            "nextxyears" => "next-x-years",
            "olderthanxdays" => "olderthan-x-days",
            "olderthanxweeks" => "olderthan-x-weeks",
            "olderthanxmonths" => "olderthan-x-months",
            "olderthanxyears" => "olderthan-x-years",
            "on" => "on",
            "noton" => "not-on",
            "onorafter" => "on-or-after",
            "onorbefore" => "on-or-before",
            _ => return None,
        })
    }

    /// The comparisons it takes.
    #[must_use]
    pub fn terms(&self) -> usize {
        match self {
            Days::Outside(..) => 4,
            _ => 2,
        }
    }

    /// The filter of `column` it is.
    #[must_use]
    pub fn filter(self, column: &str) -> Filter {
        let between = |a: String, b: String| {
            let at = |op: CompareOp, value: String| Filter::Compare {
                column: column.to_owned(),
                op,
                value: Value::Text(value),
            };
            Filter::And(vec![at(CompareOp::Ge, a), at(CompareOp::Lt, b)])
        };
        // Days past the years ISO 8601 text writes in four digits are its first or last day.
        let text = |d: Date| {
            let (least, most) = (
                Date {
                    year: 0,
                    month: 1,
                    day: 1,
                },
                Date {
                    year: 9999,
                    month: 12,
                    day: 31,
                },
            );
            d.clamp(least, most).to_string()
        };
        let (first, past) = (FIRST_DATE.to_owned(), PAST_DATES.to_owned());
        match self {
            Days::Within(a, b) => between(text(a), text(b)),
            Days::Outside(a, b) => {
                Filter::Or(vec![between(first, text(a)), between(text(b), past)])
            }
            Days::From(d) => between(text(d), past),
            Days::Before(d) => between(first, text(d)),
        }
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Date {
        Date::parse(text).unwrap_or(Date {
            year: 0,
            month: 0,
            day: 0,
        })
    }

    #[test]
    fn dates_read_count_and_move() {
        assert_eq!(d("2026-12-04T10:00:00Z").to_string(), "2026-12-04");
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "26-12-04",
            "2026-12-0",
            "yesterday",
            "2026-12-045",
        ] {
            assert_eq!(Date::parse(bad), None, "{bad}");
        }
        assert_eq!(d("1970-01-01").days(), 0);
        for text in ["2024-02-29", "2000-03-01", "1899-12-31", "2026-12-07"] {
            assert_eq!(Date::from_days(d(text).days()), d(text));
        }
        assert_eq!(d("2026-12-31").add_days(1).to_string(), "2027-01-01");
        assert_eq!(d("2026-01-31").add_months(1).to_string(), "2026-02-28");
        assert_eq!(d("2024-01-31").add_months(1).to_string(), "2024-02-29");
        assert_eq!(d("2026-01-15").add_months(-1).to_string(), "2025-12-15");
        // 2026-12-07 is a Monday; 2026-12-06 a Sunday.
        assert_eq!(
            (d("2026-12-07").weekday(), d("2026-12-06").weekday()),
            (1, 7)
        );
        assert_eq!(d("2026-12-06").week_start().to_string(), "2026-11-30");
        // ISO weeks: 2026-01-01 (a Thursday) is week 1; 2027-01-01 (a Friday) week 53 of 2026;
        // 2024-12-30 (a Monday) week 1 of 2025.
        assert_eq!(d("2026-01-01").iso_week(), 1);
        assert_eq!(d("2027-01-01").iso_week(), 53);
        assert_eq!(d("2024-12-30").iso_week(), 1);
        assert_eq!(d("2026-12-04").iso_week(), 49);
    }

    #[test]
    fn ranges_stay_within_the_dates_text_can_write() {
        let today = d("2026-12-07");
        let range = |operator: &str, value: &str| {
            Days::of(operator, Some(value), today).map(|days| days.map(|d| d.filter("c")))
        };
        let within = |a: &str, b: &str| {
            let at = |op, v: &str| Filter::Compare {
                column: "c".into(),
                op,
                value: Value::Text(v.into()),
            };
            Some(Filter::And(vec![
                at(CompareOp::Ge, a),
                at(CompareOp::Lt, b),
            ]))
        };
        assert_eq!(
            range("last-x-years", &MAX_DATE_COUNT.to_string()),
            Ok(within("0000-01-01", "2026-12-08"))
        );
        assert_eq!(
            range("next-x-years", &MAX_DATE_COUNT.to_string()),
            Ok(within("2026-12-07", "9999-12-31"))
        );
        assert_eq!(range("sometime", "1"), Ok(None));
    }
}
