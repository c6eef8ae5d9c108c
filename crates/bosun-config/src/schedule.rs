//! `schedule = "0 6 * * *"`: five-field cron expressions in a time zone, parsed and
//! validated once into a [`Schedule`], then asked [`Schedule::next_after`] an
//! instant. Pure arithmetic: no clock, no timer (the supervisor owns those).
//!
//! The syntax and meaning are Vixie cron's (as in cronie, Debian's `cron`):
//!
//! - fields: minute `0-59`, hour `0-23`, day of month `1-31`, month `1-12` or
//!   `jan`–`dec`, day of week `0-7` (0 and 7 are Sunday) or `sun`–`sat`; names are
//!   case-insensitive and may be used in ranges (`mon-fri`);
//! - each field: `*`, `N`, `A-B`, lists `A,B-C`, steps `*/N`, `A-B/N`, and `A/N`
//!   (from A to the field's end, as cronie reads it);
//! - `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`),
//!   `@hourly`; `@reboot` is refused (a scheduled task never runs at boot);
//! - day of month and day of week: when both are restricted (neither starts with
//!   `*`), a day matches when **either** does (`0 0 1 * mon`: the 1st and every
//!   Monday); otherwise both must;
//! - a day that a month does not have is skipped (`0 0 31 * *` runs in the months
//!   with 31 days; `0 0 29 2 *` only in leap years); an expression that can never
//!   fire (`0 0 30 2 *`) is refused.
//!
//! Daylight saving time, as cronie does it (its "fixed-time" vs "wildcard" jobs):
//! a job whose minute or hour field starts with `*` is *wildcard*.
//!
//! - Spring forward (local times that do not exist, e.g. 02:00–03:00 in
//!   Europe/Berlin on the last Sunday of March): a fixed-time job due in the gap
//!   runs once, at the moment the clock jumps (03:00 local); a wildcard job skips
//!   the times that did not exist.
//! - Fall back (local times that happen twice): a fixed-time job runs once, at
//!   the first occurrence; a wildcard job runs at both (an hourly job stays hourly).

use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone, TimeZoneDatabase};
use jiff::{Timestamp, ToSpan};

/// Where the system's time zone database lives (Debian's `tzdata`).
const SYSTEM_ZONEINFO: &str = "/usr/share/zoneinfo";

/// How far an instant's local time can be from a neighbouring one's across a
/// transition (DST is at most 2 h anywhere in the tz database; room to spare).
const SHIFT: i64 = 3;

/// Longer than any valid expression waits between two firings: 29 February
/// after a century that is not a leap year (2096 → 2104) is 8 years; a day
/// that must also be a given weekday (`* * */7 3 sun`: 1 March a Sunday) comes
/// back within 12 years, and the calendar repeats every 28 (400, with centuries).
const SEARCH_YEARS: i16 = 30;

/// A validated schedule: a cron expression and the time zone it is read in.
#[derive(Clone)]
pub struct Schedule {
    expr: String,
    tz_name: String,
    tz: TimeZone,
    minutes: u64,
    hours: u32,
    /// Bits 1..=31.
    days: u32,
    /// Bits 1..=12.
    months: u16,
    /// Bits 0..=6 (Sunday is 0; a 7 in the text is folded into it).
    weekdays: u8,
    /// Day of month written with a leading `*` (Vixie's DOM_STAR).
    days_star: bool,
    /// Day of week written with a leading `*` (Vixie's DOW_STAR).
    weekdays_star: bool,
    /// Minute or hour written with a leading `*`: a "wildcard" job for DST.
    wildcard: bool,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr && self.tz_name == other.tz_name
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?} in {})", self.expr, self.tz_name)
    }
}

/// Why a schedule was refused: the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression is malformed (the message names the field and what it takes).
    #[error("{0}")]
    Expr(String),
    /// The time zone is not in the time zone database.
    #[error("unknown time zone {name:?}: expected an IANA name such as \"UTC\", \"Europe/Berlin\" or \"America/New_York\"{hint}")]
    TimeZone {
        /// The name as written.
        name: String,
        /// A "did you mean" or where the names come from.
        hint: String,
    },
}

/// One of the five fields: its name, range and value names.
struct Field {
    name: &'static str,
    min: u8,
    max: u8,
    names: &'static [&'static str],
}

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
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const WEEKDAY: Field = Field {
    name: "day of week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

const SHAPE: &str = "expected five fields \"MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK\" \
(e.g. \"0 6 * * *\", \"*/15 * * * mon-fri\") or one of @hourly, @daily, @weekly, @monthly, @yearly";

impl Field {
    /// The field's values as a bit set (bit `n` = value `n`).
    fn parse(&self, text: &str) -> Result<u64, String> {
        let mut bits = 0u64;
        for item in text.split(',') {
            bits |= self.item(item)?;
        }
        Ok(bits)
    }

    fn item(&self, item: &str) -> Result<u64, String> {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u8 = s
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1 && n <= self.max)
                    .ok_or_else(|| {
                        format!(
                            "{} field {item:?}: the step after `/` must be a number from 1 to {}",
                            self.name, self.max
                        )
                    })?;
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (self.min, self.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (self.value(a, item)?, self.value(b, item)?);
            if a > b {
                return Err(format!(
                    "{} field {item:?}: the range goes backwards ({a} > {b}); write it as \"{b}-{a}\" or as a list",
                    self.name
                ));
            }
            (a, b)
        } else {
            let a = self.value(range, item)?;
            // `A/N` runs from A to the end of the field (cronie); plain `A` is A alone.
            (a, if item.contains('/') { self.max } else { a })
        };
        let mut bits = 0u64;
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v = match v.checked_add(step) {
                Some(n) => n,
                None => break,
            };
        }
        Ok(bits)
    }

    fn value(&self, text: &str, item: &str) -> Result<u8, String> {
        if let Some(i) = self.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            return Ok(i as u8 + self.min);
        }
        let names = if self.names.is_empty() {
            String::new()
        } else {
            format!(
                " or a name ({}–{})",
                self.names[0],
                self.names[self.names.len() - 1]
            )
        };
        match text.parse::<u8>() {
            Ok(n) if (self.min..=self.max).contains(&n) => Ok(n),
            _ => Err(format!(
                "{} field {item:?}: {text:?} is not a {} from {} to {}{names}",
                self.name,
                if text.chars().all(|c| c.is_ascii_digit()) {
                    "value"
                } else {
                    "number"
                },
                self.min,
                self.max
            )),
        }
    }
}

/// The time zone database: the system's (`/usr/share/zoneinfo`, kept up to date by
/// the image's `tzdata`) when it has the zone, else the copy built into bosun, so a
/// minimal image without `tzdata` still knows every zone.
fn lookup_tz(name: &str) -> Result<TimeZone, ScheduleError> {
    if name.eq_ignore_ascii_case("UTC") {
        return Ok(TimeZone::UTC);
    }
    static SYSTEM: OnceLock<TimeZoneDatabase> = OnceLock::new();
    let system = SYSTEM.get_or_init(|| {
        if std::path::Path::new(SYSTEM_ZONEINFO).is_dir() {
            TimeZoneDatabase::from_dir(SYSTEM_ZONEINFO).unwrap_or_else(|_| TimeZoneDatabase::none())
        } else {
            TimeZoneDatabase::none()
        }
    });
    if let Ok(tz) = system.get(name) {
        return Ok(tz);
    }
    if let Ok(tz) = bundled().get(name) {
        return Ok(tz);
    }
    let names: Vec<String> = bundled()
        .available()
        .map(|n| n.as_str().to_string())
        .collect();
    let hint = crate::diag::did_you_mean(name, names.iter().map(String::as_str));
    Err(ScheduleError::TimeZone {
        name: name.to_string(),
        hint,
    })
}

/// The time zone database compiled into bosun.
fn bundled() -> &'static TimeZoneDatabase {
    static BUNDLED: OnceLock<TimeZoneDatabase> = OnceLock::new();
    BUNDLED.get_or_init(TimeZoneDatabase::bundled)
}

impl Schedule {
    /// Parses `expr` (five fields or an `@` name) read in time zone `tz` (an IANA
    /// name; `None` is UTC).
    pub fn new(expr: &str, tz: Option<&str>) -> Result<Schedule, ScheduleError> {
        let tz_name = tz.unwrap_or("UTC").to_string();
        let fields = expand_alias(expr.trim())?;
        let parts: Vec<&str> = fields.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(ScheduleError::Expr(format!(
                "{expr:?} has {} field{}: {SHAPE}",
                parts.len(),
                if parts.len() == 1 { "" } else { "s" }
            )));
        }
        let err = ScheduleError::Expr;
        let weekdays = WEEKDAY.parse(parts[4]).map_err(err)?;
        let s = Schedule {
            expr: expr.trim().to_string(),
            minutes: MINUTE.parse(parts[0]).map_err(err)?,
            hours: HOUR.parse(parts[1]).map_err(err)? as u32,
            days: DAY.parse(parts[2]).map_err(err)? as u32,
            months: MONTH.parse(parts[3]).map_err(err)? as u16,
            // 7 is Sunday too.
            weekdays: ((weekdays & 0x7f) | (weekdays >> 7)) as u8,
            days_star: parts[2].starts_with('*'),
            weekdays_star: parts[4].starts_with('*'),
            wildcard: parts[0].starts_with('*') || parts[1].starts_with('*'),
            tz: lookup_tz(&tz_name)?,
            tz_name,
        };
        s.check_can_fire()?;
        Ok(s)
    }

    /// The expression as written (trimmed).
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The time zone's name (`UTC` when none was given).
    pub fn timezone(&self) -> &str {
        &self.tz_name
    }

    /// Refuses a day of month that none of the chosen months has (`30 2`), unless
    /// the day of week can fire instead (both restricted: either matches).
    fn check_can_fire(&self) -> Result<(), ScheduleError> {
        if self.uses_or() {
            return Ok(());
        }
        // The most days each month can have (February: 29, in leap years).
        const MAX_DAYS: [u8; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let first_day = self.days.trailing_zeros() as u8;
        let possible = (1..=12u8)
            .filter(|m| self.months & (1 << m) != 0)
            .any(|m| first_day <= MAX_DAYS[usize::from(m - 1)]);
        if possible {
            return Ok(());
        }
        Err(ScheduleError::Expr(format!(
            "{:?} never runs: no chosen month has day {first_day} (February has at most 29 days, \
             April, June, September and November 30)",
            self.expr
        )))
    }

    /// Vixie's rule: both day fields restricted → a day matches when either does.
    fn uses_or(&self) -> bool {
        !self.days_star && !self.weekdays_star
    }

    fn day_matches(&self, d: Date) -> bool {
        if self.months & (1 << d.month()) == 0 {
            return false;
        }
        let dom = self.days & (1 << d.day()) != 0;
        let dow = self.weekdays & (1 << d.weekday().to_sunday_zero_offset()) != 0;
        if self.uses_or() {
            dom || dow
        } else {
            dom && dow
        }
    }

    /// The first local (civil) minute strictly after `after` that the fields
    /// match; `None` past [`SEARCH_YEARS`] (or the end of the calendar).
    fn next_civil(&self, after: DateTime) -> Option<DateTime> {
        let limit = after.year().saturating_add(SEARCH_YEARS);
        let start = after.checked_add(1.minute()).ok()?;
        let mut date = start.date();
        let mut from = Time::new(start.hour(), start.minute(), 0, 0).ok()?;
        while date.year() <= limit {
            if self.months & (1 << date.month()) == 0 {
                // Jump to the first day of the next month.
                date = date.first_of_month().checked_add(1.month()).ok()?;
                from = Time::midnight();
                continue;
            }
            if self.day_matches(date) {
                if let Some(t) = self.time_from(from) {
                    return Some(date.to_datetime(t));
                }
            }
            date = date.tomorrow().ok()?;
            from = Time::midnight();
        }
        None
    }

    /// The first matching time of day at or after `from`.
    fn time_from(&self, from: Time) -> Option<Time> {
        for h in from.hour()..24 {
            if self.hours & (1 << h) == 0 {
                continue;
            }
            let m0 = if h == from.hour() { from.minute() } else { 0 };
            for m in m0..60 {
                if self.minutes & (1 << m) != 0 {
                    return Time::new(h, m, 0, 0).ok();
                }
            }
        }
        None
    }

    /// The instants a matching local time `c` stands for (0, 1 or 2; see the
    /// module's DST rules).
    fn instants(&self, c: DateTime) -> Vec<Timestamp> {
        let amb = self.tz.to_ambiguous_timestamp(c);
        match amb.offset() {
            AmbiguousOffset::Unambiguous { .. } => amb.compatible().ok().into_iter().collect(),
            AmbiguousOffset::Gap { before, .. } => {
                if self.wildcard {
                    return Vec::new();
                }
                // When the clock jumped: the last transition before `c` read with
                // the offset in force before the gap (which lies past the gap).
                let past = c.to_zoned(TimeZone::fixed(before)).ok();
                past.and_then(|z| self.tz.preceding(z.timestamp()).next())
                    .map(|t| t.timestamp())
                    .into_iter()
                    .collect()
            }
            AmbiguousOffset::Fold { .. } => {
                let earlier = amb.earlier().ok();
                let later = amb.later().ok().filter(|_| self.wildcard);
                earlier.into_iter().chain(later).collect()
            }
        }
    }

    /// The first instant strictly after `t` at which the schedule fires; `None`
    /// only at the end of the calendar (a validated schedule always fires again).
    pub fn next_after_ts(&self, t: Timestamp) -> Option<Timestamp> {
        let local = t.to_zoned(self.tz.clone()).datetime();
        // Start a little before `t`'s local time: the second occurrence of a fold,
        // or a gap time's jump, can lie after `t` though its local time is before.
        let mut c = local.checked_sub(SHIFT.hours()).ok()?;
        let mut best: Option<Timestamp> = None;
        loop {
            c = self.next_civil(c)?;
            if let Some(b) = best {
                let b_local = b.to_zoned(self.tz.clone()).datetime();
                if c > b_local.checked_add(SHIFT.hours()).ok()? {
                    return best;
                }
            }
            for i in self.instants(c) {
                if i > t && best.map_or(true, |b| i < b) {
                    best = Some(i);
                }
            }
        }
    }

    /// [`Schedule::next_after_ts`] for the system clock's type (whole seconds and
    /// below are kept).
    pub fn next_after(&self, t: SystemTime) -> Option<SystemTime> {
        let ts = Timestamp::try_from(t).ok()?;
        let next = self.next_after_ts(ts)?;
        let secs = u64::try_from(next.as_second()).ok()?;
        Some(UNIX_EPOCH + Duration::from_secs(secs))
    }

    /// `at` as a local time in this schedule's zone, to the minute, with its
    /// offset (`2026-03-29 03:00 +02:00`), for status lines.
    pub fn local_time(&self, at: SystemTime) -> String {
        match Timestamp::try_from(at) {
            Ok(ts) => ts
                .to_zoned(self.tz.clone())
                .strftime("%Y-%m-%d %H:%M %:z")
                .to_string(),
            Err(_) => "?".to_string(),
        }
    }
}

/// `@daily` and friends as five fields; anything else is returned as it is.
fn expand_alias(expr: &str) -> Result<&str, ScheduleError> {
    if !expr.starts_with('@') {
        return Ok(expr);
    }
    Ok(match expr.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        "@reboot" => {
            return Err(ScheduleError::Expr(
                "@reboot is not a schedule here: a task without `schedule` already runs at boot"
                    .into(),
            ))
        }
        _ => return Err(ScheduleError::Expr(format!("unknown {expr:?}: {SHAPE}"))),
    })
}

#[cfg(test)]
mod tests;
