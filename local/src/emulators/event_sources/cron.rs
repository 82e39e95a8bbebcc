//! EventBridge's `cron(...)` expressions, in UTC: six fields, `minutes hours
//! day-of-month month day-of-week year`, each `*`, a value, a list (`,`), a range (`-`)
//! or a step (`/`); months `1-12` or `JAN-DEC`, weekdays `1-7` (Sunday is 1) or `SUN-SAT`;
//! one of day-of-month and day-of-week is `?`. Day-of-month also takes `L` (last day),
//! `L-n`, `nW` (nearest weekday) and `LW`; day-of-week `nL` (last such weekday of the
//! month) and `n#k` (the k-th such weekday).

use std::collections::BTreeSet;

use time::{Date, Duration, Month, OffsetDateTime, Time, Weekday};

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("cron({expression}): {reason}")]
pub struct CronError {
    pub expression: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
enum DayOfMonth {
    Any,
    Days(BTreeSet<u8>),
    /// `L` / `L-n`: the last day of the month minus n.
    Last(u8),
    /// `nW`: the weekday nearest day n, within the month.
    NearestWeekday(u8),
    /// `LW`: the last weekday of the month.
    LastWeekday,
}

#[derive(Debug, Clone, PartialEq)]
enum DayOfWeek {
    Any,
    /// 1 (Sunday) ..= 7 (Saturday).
    Days(BTreeSet<u8>),
    /// `nL`: the last such weekday of the month.
    Last(u8),
    /// `n#k`: the k-th such weekday of the month.
    Nth(u8, u8),
}

/// A parsed `cron(...)` schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    minutes: BTreeSet<u8>,
    hours: BTreeSet<u8>,
    dom: DayOfMonth,
    months: BTreeSet<u8>,
    dow: DayOfWeek,
    years: BTreeSet<u16>,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Cron {
    /// Parses `cron(...)` (or the six fields alone).
    pub fn parse(expression: &str) -> Result<Self, CronError> {
        let inner = expression.trim();
        let inner = inner
            .strip_prefix("cron(")
            .and_then(|s| s.strip_suffix(')'))
            .unwrap_or(inner);
        let err = |reason: String| CronError {
            expression: inner.to_owned(),
            reason,
        };
        let fields: Vec<&str> = inner.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(err(format!(
                "{} fields; EventBridge's cron has 6 (minutes hours day-of-month month day-of-week year)",
                fields.len()
            )));
        }
        let minutes = set(fields[0], 0, 59, &[]).map_err(|r| err(format!("minutes: {r}")))?;
        let hours = set(fields[1], 0, 23, &[]).map_err(|r| err(format!("hours: {r}")))?;
        let months = set(fields[3], 1, 12, &MONTHS).map_err(|r| err(format!("month: {r}")))?;
        let years: BTreeSet<u16> =
            set16(fields[5], 1970, 2199).map_err(|r| err(format!("year: {r}")))?;
        let dom = day_of_month(fields[2]).map_err(|r| err(format!("day-of-month: {r}")))?;
        let dow = day_of_week(fields[4]).map_err(|r| err(format!("day-of-week: {r}")))?;
        match (&dom, &dow) {
            (DayOfMonth::Any, DayOfWeek::Any) => {
                return Err(err("day-of-month and day-of-week cannot both be ?".into()));
            }
            (DayOfMonth::Any, _) | (_, DayOfWeek::Any) => {}
            _ => {
                return Err(err(
                    "one of day-of-month and day-of-week must be ? (EventBridge does not take both)"
                        .into(),
                ));
            }
        }
        Ok(Self {
            minutes,
            hours,
            dom,
            months,
            dow,
            years,
        })
    }

    /// The first firing strictly after `after` (UTC), if there is one before 2200.
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let after = after.to_offset(time::UtcOffset::UTC);
        let mut day = after.date();
        loop {
            if day.year() > 2199 {
                return None;
            }
            if !self.years.contains(&(day.year() as u16)) {
                day = Date::from_calendar_date(day.year() + 1, Month::January, 1).ok()?;
                continue;
            }
            if !self.months.contains(&(day.month() as u8)) {
                day = first_of_next_month(day)?;
                continue;
            }
            if self.day_matches(day) {
                for &h in &self.hours {
                    for &m in &self.minutes {
                        let t = Time::from_hms(h, m, 0).ok()?;
                        let at = day.with_time(t).assume_utc();
                        if at > after {
                            return Some(at);
                        }
                    }
                }
            }
            day = day.next_day()?;
        }
    }

    fn day_matches(&self, day: Date) -> bool {
        let last = last_day_of_month(day);
        let dom_ok = match &self.dom {
            DayOfMonth::Any => true,
            DayOfMonth::Days(days) => days.contains(&day.day()),
            DayOfMonth::Last(n) => last.day().checked_sub(*n) == Some(day.day()),
            DayOfMonth::NearestWeekday(n) => nearest_weekday(day, *n) == Some(day.day()),
            DayOfMonth::LastWeekday => {
                let mut d = last;
                while is_weekend(d) {
                    d = d.previous_day().unwrap_or(d);
                }
                d == day
            }
        };
        let weekday = day.weekday().number_from_sunday();
        let dow_ok = match &self.dow {
            DayOfWeek::Any => true,
            DayOfWeek::Days(days) => days.contains(&weekday),
            DayOfWeek::Last(w) => *w == weekday && day.day() + 7 > last.day(),
            DayOfWeek::Nth(w, k) => *w == weekday && (day.day() - 1) / 7 + 1 == *k,
        };
        dom_ok && dow_ok
    }
}

fn is_weekend(d: Date) -> bool {
    matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

fn first_of_next_month(day: Date) -> Option<Date> {
    let (y, m) = if day.month() == Month::December {
        (day.year() + 1, Month::January)
    } else {
        (day.year(), day.month().next())
    };
    Date::from_calendar_date(y, m, 1).ok()
}

fn last_day_of_month(day: Date) -> Date {
    first_of_next_month(day)
        .and_then(Date::previous_day)
        .unwrap_or(day)
}

/// The day of `day`'s month that `nW` picks: day n if a weekday, else the nearest weekday
/// in the same month.
fn nearest_weekday(day: Date, n: u8) -> Option<u8> {
    let last = last_day_of_month(day).day();
    if n > last {
        return None;
    }
    let target = day.replace_day(n).ok()?;
    Some(match target.weekday() {
        Weekday::Saturday if n == 1 => 3,
        Weekday::Saturday => n - 1,
        Weekday::Sunday if n == last => n - 2,
        Weekday::Sunday => n + 1,
        _ => n,
    })
}

fn value(s: &str, min: u32, max: u32, names: &[&str]) -> Result<u32, String> {
    let v = if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        i as u32 + min
    } else {
        s.parse::<u32>().map_err(|_| {
            format!(
                "{s} is not a number{}",
                if names.is_empty() { "" } else { " or a name" }
            )
        })?
    };
    if v < min || v > max {
        return Err(format!("{v} is outside {min}-{max}"));
    }
    Ok(v)
}

/// `*`, `a`, `a-b`, `a/s`, `a-b/s`, `*/s`, comma-separated.
fn values(field: &str, min: u32, max: u32, names: &[&str]) -> Result<BTreeSet<u32>, String> {
    let mut out = BTreeSet::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("bad step in {part}"))?,
            ),
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, min, max, names)?, value(b, min, max, names)?)
        } else {
            let v = value(range, min, max, names)?;
            (v, if part.contains('/') { max } else { v })
        };
        if lo > hi {
            return Err(format!("{part}: the range runs backwards"));
        }
        out.extend((lo..=hi).step_by(step as usize));
    }
    Ok(out)
}

fn set(field: &str, min: u32, max: u32, names: &[&str]) -> Result<BTreeSet<u8>, String> {
    unsupported(field)?;
    Ok(values(field, min, max, names)?
        .into_iter()
        .map(|v| v as u8)
        .collect())
}

fn set16(field: &str, min: u32, max: u32) -> Result<BTreeSet<u16>, String> {
    unsupported(field)?;
    Ok(values(field, min, max, &[])?
        .into_iter()
        .map(|v| v as u16)
        .collect())
}

fn unsupported(field: &str) -> Result<(), String> {
    for c in ['?', 'L', 'W', '#'] {
        if field.contains(c) && !field.chars().any(|x| x.is_ascii_alphabetic() && x != c) {
            return Err(format!(
                "{c} is only allowed in day-of-month or day-of-week"
            ));
        }
    }
    Ok(())
}

fn day_of_month(field: &str) -> Result<DayOfMonth, String> {
    Ok(match field {
        "?" => DayOfMonth::Any,
        "L" => DayOfMonth::Last(0),
        "LW" => DayOfMonth::LastWeekday,
        f if f.starts_with("L-") => DayOfMonth::Last(
            f[2..]
                .parse()
                .ok()
                .filter(|n| (1..=30).contains(n))
                .ok_or_else(|| format!("{f}: L-n takes n in 1-30"))?,
        ),
        f if f.ends_with('W') => {
            DayOfMonth::NearestWeekday(value(&f[..f.len() - 1], 1, 31, &[])? as u8)
        }
        f if f.contains(['L', 'W', '#']) => {
            return Err(format!("{f}: unsupported (L, L-n, nW, LW are)"));
        }
        f => DayOfMonth::Days(set(f, 1, 31, &[])?),
    })
}

fn day_of_week(field: &str) -> Result<DayOfWeek, String> {
    Ok(match field {
        "?" => DayOfWeek::Any,
        "L" => DayOfWeek::Days([7].into()),
        f if f.contains('#') => {
            let (w, k) = f.split_once('#').expect("contains #");
            let k: u8 = k
                .parse()
                .ok()
                .filter(|k| (1..=5).contains(k))
                .ok_or_else(|| format!("{f}: n#k takes k in 1-5"))?;
            DayOfWeek::Nth(value(w, 1, 7, &WEEKDAYS)? as u8, k)
        }
        f if f.len() > 1 && f.ends_with('L') => {
            DayOfWeek::Last(value(&f[..f.len() - 1], 1, 7, &WEEKDAYS)? as u8)
        }
        f if f.contains('W') && !WEEKDAYS.iter().any(|d| f.to_uppercase().contains(d)) => {
            return Err(format!("{f}: W is only allowed in day-of-month"));
        }
        f => DayOfWeek::Days(
            values(f, 1, 7, &WEEKDAYS)?
                .into_iter()
                .map(|v| v as u8)
                .collect(),
        ),
    })
}

/// Seconds until `at`, never negative.
pub fn until(now: OffsetDateTime, at: OffsetDateTime) -> std::time::Duration {
    let d: Duration = at - now;
    d.try_into().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn next(expr: &str, after: OffsetDateTime) -> OffsetDateTime {
        Cron::parse(expr)
            .expect("parses")
            .next_after(after)
            .expect("fires")
    }

    #[test]
    fn the_daily_digest_fires_at_eight_utc() {
        let expr = "cron(0 8 * * ? *)";
        assert_eq!(
            next(expr, datetime!(2026-11-30 07:59:59 UTC)),
            datetime!(2026-11-30 08:00 UTC)
        );
        assert_eq!(
            next(expr, datetime!(2026-11-30 08:00 UTC)),
            datetime!(2026-12-01 08:00 UTC)
        );
        assert_eq!(
            next(expr, datetime!(2026-12-31 09:00 UTC)),
            datetime!(2027-01-01 08:00 UTC)
        );
    }

    #[test]
    fn lists_ranges_steps_names_and_years() {
        // every 15 minutes 9-17 on weekdays
        let e = "cron(0/15 9-17 ? * MON-FRI *)";
        assert_eq!(
            next(e, datetime!(2026-11-28 12:00 UTC)), // a Saturday
            datetime!(2026-11-30 09:00 UTC)
        );
        assert_eq!(
            next(e, datetime!(2026-11-30 09:00 UTC)),
            datetime!(2026-11-30 09:15 UTC)
        );
        assert_eq!(
            next(e, datetime!(2026-11-30 17:45 UTC)),
            datetime!(2026-12-01 09:00 UTC)
        );
        assert_eq!(
            next(
                "cron(30 2 1 JAN,JUL ? 2027-2028)",
                datetime!(2026-11-30 00:00 UTC)
            ),
            datetime!(2027-01-01 02:30 UTC)
        );
        // past its last year it never fires
        assert!(
            Cron::parse("cron(0 0 1 1 ? 2026)")
                .unwrap()
                .next_after(datetime!(2026-11-30 00:00 UTC))
                .is_none()
        );
        // 1 = Sunday
        assert_eq!(
            next("cron(0 12 ? * 1 *)", datetime!(2026-11-30 00:00 UTC)),
            datetime!(2026-12-06 12:00 UTC)
        );
    }

    #[test]
    fn last_nearest_weekday_and_nth_weekday() {
        assert_eq!(
            next("cron(0 0 L * ? *)", datetime!(2027-02-01 00:00 UTC)),
            datetime!(2027-02-28 00:00 UTC)
        );
        assert_eq!(
            next("cron(0 0 L-2 * ? *)", datetime!(2026-11-01 00:00 UTC)),
            datetime!(2026-11-28 00:00 UTC)
        );
        // 2026-11-01 is a Sunday: 1W is Monday the 2nd; 2026-11-30 is a Monday: LW is it
        assert_eq!(
            next("cron(0 0 1W * ? *)", datetime!(2026-10-31 00:00 UTC)),
            datetime!(2026-11-02 00:00 UTC)
        );
        assert_eq!(
            next("cron(0 0 LW * ? *)", datetime!(2026-11-01 00:00 UTC)),
            datetime!(2026-11-30 00:00 UTC)
        );
        // the last Friday (6L) and the second Tuesday (3#2) of November 2026
        assert_eq!(
            next("cron(0 0 ? * 6L *)", datetime!(2026-11-01 00:00 UTC)),
            datetime!(2026-11-27 00:00 UTC)
        );
        assert_eq!(
            next("cron(0 0 ? * TUE#2 *)", datetime!(2026-11-01 00:00 UTC)),
            datetime!(2026-11-10 00:00 UTC)
        );
    }

    #[test]
    fn what_eventbridge_refuses_is_named() {
        for (expr, says) in [
            ("cron(0 8 * * *)", "5 fields"),
            ("cron(0 8 * * * *)", "must be ?"),
            ("cron(0 8 ? * ? *)", "both be ?"),
            ("cron(60 8 * * ? *)", "minutes: 60 is outside 0-59"),
            (
                "cron(0 8 * FOO ? *)",
                "month: FOO is not a number or a name",
            ),
            ("cron(0 8 * * ? 1969)", "year"),
            ("cron(0 L * * ? *)", "hours: L is only allowed"),
            ("cron(0 8 ? * 2#9 *)", "n#k takes k in 1-5"),
        ] {
            let e = Cron::parse(expr).expect_err(expr);
            assert!(e.to_string().contains(says), "{expr}: {e}");
        }
    }
}
