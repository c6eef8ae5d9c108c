//! The schedule arithmetic: syntax, month ends, leap days, Vixie's day rule, DST
//! in named zones, and properties over random expressions and instants.

use super::*;
use proptest::prelude::*;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

fn sched(expr: &str, tz: &str) -> Schedule {
    Schedule::new(expr, Some(tz)).expect("valid schedule")
}

/// The next `n` firings after `from`, as RFC 3339 UTC strings.
fn firings(s: &Schedule, from: &str, n: usize) -> Vec<String> {
    let mut t = ts(from);
    let mut out = Vec::new();
    for _ in 0..n {
        t = s.next_after_ts(t).expect("fires again");
        out.push(t.to_string());
    }
    out
}

fn err(expr: &str) -> String {
    Schedule::new(expr, None)
        .expect_err("should be refused")
        .to_string()
}

#[test]
fn daily_at_six_utc() {
    let s = sched("0 6 * * *", "UTC");
    assert_eq!(
        firings(&s, "2026-12-01T13:00:00Z", 2),
        ["2026-12-02T06:00:00Z", "2026-12-03T06:00:00Z"]
    );
    // Strictly after: at 06:00 exactly, the next is tomorrow's.
    assert_eq!(
        firings(&s, "2026-12-02T06:00:00Z", 1),
        ["2026-12-03T06:00:00Z"]
    );
    // Mid-minute: the next whole minute that matches.
    let every = sched("* * * * *", "UTC");
    assert_eq!(
        firings(&every, "2026-12-02T06:00:30.5Z", 1),
        ["2026-12-02T06:01:00Z"]
    );
}

#[test]
fn lists_ranges_steps_and_names() {
    let s = sched("*/20 9-17/4 * * mon-fri", "UTC");
    // 2026-12-04 is a Friday.
    assert_eq!(
        firings(&s, "2026-12-04T16:50:00Z", 4),
        [
            "2026-12-04T17:00:00Z",
            "2026-12-04T17:20:00Z",
            "2026-12-04T17:40:00Z",
            "2026-12-07T09:00:00Z"
        ]
    );
    let s = sched("5,10-12 0 1 JAN,jul *", "UTC");
    assert_eq!(
        firings(&s, "2026-06-01T00:00:00Z", 5),
        [
            "2026-07-01T00:05:00Z",
            "2026-07-01T00:10:00Z",
            "2026-07-01T00:11:00Z",
            "2026-07-01T00:12:00Z",
            "2027-01-01T00:05:00Z"
        ]
    );
    // `A/N`: from A to the end of the field.
    let s = sched("50/5 * * * *", "UTC");
    assert_eq!(
        firings(&s, "2026-01-01T00:00:00Z", 3),
        [
            "2026-01-01T00:50:00Z",
            "2026-01-01T00:55:00Z",
            "2026-01-01T01:50:00Z"
        ]
    );
}

#[test]
fn sunday_is_zero_and_seven() {
    // 2026-12-06 is a Sunday.
    for expr in ["0 12 * * 0", "0 12 * * 7", "0 12 * * sun", "@weekly"] {
        let s = sched(expr, "UTC");
        let first = &firings(&s, "2026-12-01T00:00:00Z", 1)[0];
        assert!(first.starts_with("2026-12-06T"), "{expr}: {first}");
    }
    assert_eq!(sched("0 0 * * 5-7", "UTC").weekdays, 0b110_0001);
}

#[test]
fn aliases() {
    let from = "2026-05-15T10:30:00Z";
    let cases = [
        ("@hourly", "2026-05-15T11:00:00Z"),
        ("@daily", "2026-05-16T00:00:00Z"),
        ("@midnight", "2026-05-16T00:00:00Z"),
        ("@monthly", "2026-06-01T00:00:00Z"),
        ("@yearly", "2027-01-01T00:00:00Z"),
        ("@ANNUALLY", "2027-01-01T00:00:00Z"),
    ];
    for (expr, want) in cases {
        assert_eq!(firings(&sched(expr, "UTC"), from, 1), [want], "{expr}");
    }
}

#[test]
fn the_31st_is_skipped_in_shorter_months() {
    let s = sched("0 0 31 * *", "UTC");
    assert_eq!(
        firings(&s, "2026-01-31T00:00:00Z", 4),
        [
            "2026-03-31T00:00:00Z",
            "2026-05-31T00:00:00Z",
            "2026-07-31T00:00:00Z",
            "2026-08-31T00:00:00Z"
        ]
    );
}

#[test]
fn february_29_only_in_leap_years() {
    let s = sched("0 0 29 2 *", "UTC");
    assert_eq!(
        firings(&s, "2025-01-01T00:00:00Z", 2),
        ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]
    );
    // 2100 is not a leap year: eight years between two firings.
    assert_eq!(
        firings(&s, "2096-03-01T00:00:00Z", 1),
        ["2104-02-29T00:00:00Z"]
    );
}

#[test]
fn day_of_month_or_day_of_week_when_both_are_restricted() {
    // Vixie cron: the 13th OR any Friday. 2026-02-13 is a Friday; 2026-03-13 too.
    let s = sched("0 0 13 * fri", "UTC");
    assert_eq!(
        firings(&s, "2026-02-01T00:00:00Z", 4),
        [
            "2026-02-06T00:00:00Z",
            "2026-02-13T00:00:00Z",
            "2026-02-20T00:00:00Z",
            "2026-02-27T00:00:00Z"
        ]
    );
    let s = sched("0 0 1 * mon", "UTC");
    // 2026-06-01 is a Monday; then the 8th, 15th, …, and 1 July (a Wednesday).
    let f = firings(&s, "2026-06-25T00:00:00Z", 3);
    assert_eq!(
        f,
        [
            "2026-06-29T00:00:00Z",
            "2026-07-01T00:00:00Z",
            "2026-07-06T00:00:00Z"
        ]
    );
    // A field starting with `*` counts as unrestricted (AND): odd days that are Fridays.
    let s = sched("0 0 */2 * fri", "UTC");
    assert_eq!(
        firings(&s, "2026-02-01T00:00:00Z", 2),
        ["2026-02-13T00:00:00Z", "2026-02-27T00:00:00Z"]
    );
}

#[test]
fn berlin_spring_forward_fixed_time_runs_when_the_clock_jumps() {
    // 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC); 02:30 does not exist.
    let s = sched("30 2 * * *", "Europe/Berlin");
    assert_eq!(
        firings(&s, "2026-03-28T12:00:00Z", 2),
        ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]
    );
    assert_eq!(
        s.local_time(SystemTime::from(ts("2026-03-29T01:00:00Z"))),
        "2026-03-29 03:00 +02:00"
    );
    // Several times in the gap still run once.
    let s = sched("0,15,45 2 * * *", "Europe/Berlin");
    assert_eq!(
        firings(&s, "2026-03-29T00:30:00Z", 2),
        ["2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"]
    );
}

#[test]
fn berlin_spring_forward_wildcards_skip_the_missing_hour() {
    // Hourly at :15: 01:15 CET, (02:15 never happens), 03:15 CEST.
    let s = sched("15 * * * *", "Europe/Berlin");
    assert_eq!(
        firings(&s, "2026-03-29T00:00:00Z", 2),
        ["2026-03-29T00:15:00Z", "2026-03-29T01:15:00Z"]
    );
    let s = sched("*/30 * * * *", "Europe/Berlin");
    assert_eq!(
        firings(&s, "2026-03-29T00:20:00Z", 3),
        [
            "2026-03-29T00:30:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-29T01:30:00Z"
        ]
    );
}

#[test]
fn berlin_fall_back_fixed_time_runs_once_wildcards_run_both() {
    // 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:00–03:00 happens twice.
    let s = sched("30 2 * * *", "Europe/Berlin");
    assert_eq!(
        firings(&s, "2026-10-24T12:00:00Z", 2),
        ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
    );
    let s = sched("0 * * * *", "Europe/Berlin");
    assert_eq!(
        firings(&s, "2026-10-24T23:30:00Z", 4),
        [
            "2026-10-25T00:00:00Z",
            "2026-10-25T01:00:00Z",
            "2026-10-25T02:00:00Z",
            "2026-10-25T03:00:00Z"
        ]
    );
}

#[test]
fn new_york_spring_forward() {
    // 2026-03-08: 02:00 EST becomes 03:00 EDT (07:00 UTC).
    let s = sched("30 2 * * *", "America/New_York");
    assert_eq!(
        firings(&s, "2026-03-07T12:00:00Z", 2),
        ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]
    );
}

#[test]
fn zones_come_from_the_system_or_the_bundled_database() {
    assert!(Schedule::new("@daily", Some("Europe/Berlin")).is_ok());
    assert!(bundled().get("Europe/Berlin").is_ok());
    assert!(bundled().get("America/New_York").is_ok());
    let e = Schedule::new("@daily", Some("Europe/Berln"))
        .expect_err("unknown zone")
        .to_string();
    assert!(e.contains("unknown time zone \"Europe/Berln\""), "{e}");
    assert!(e.contains("did you mean `Europe/Berlin`?"), "{e}");
    assert_eq!(sched("@daily", "utc").timezone(), "utc");
}

#[test]
fn malformed_expressions_say_what_is_expected() {
    let cases = [
        ("0 6 * *", "has 4 fields: expected five fields"),
        ("0 6 * * * *", "has 6 fields"),
        (
            "60 * * * *",
            "minute field \"60\": \"60\" is not a value from 0 to 59",
        ),
        ("* 24 * * *", "hour field \"24\""),
        (
            "* * 0 * *",
            "day of month field \"0\": \"0\" is not a value from 1 to 31",
        ),
        ("* * * 13 *", "or a name (jan–dec)"),
        ("* * * * 8", "day of week field \"8\""),
        (
            "* * * * monday",
            "\"monday\" is not a number from 0 to 7 or a name (sun–sat)",
        ),
        (
            "*/0 * * * *",
            "the step after `/` must be a number from 1 to 59",
        ),
        ("5-1 * * * *", "the range goes backwards (5 > 1)"),
        ("1,,2 * * * *", "\"\" is not a value"),
        ("@fortnightly", "unknown \"@fortnightly\""),
        ("@reboot", "@reboot is not a schedule here"),
        ("0 0 30 2 *", "never runs: no chosen month has day 30"),
        ("0 0 31 4,6 *", "never runs"),
        ("", "has 0 fields"),
    ];
    for (expr, want) in cases {
        let e = err(expr);
        assert!(e.contains(want), "{expr:?}: {e}");
    }
    // With a day of week too, the 30th of February is no obstacle (OR).
    assert!(Schedule::new("0 0 30 2 mon", None).is_ok());
}

/// The reference rule, in UTC: does `dt` match the schedule's fields?
fn matches(s: &Schedule, dt: DateTime) -> bool {
    s.minutes & (1 << dt.minute()) != 0
        && s.hours & (1 << dt.hour()) != 0
        && s.day_matches(dt.date())
}

fn field(max: u8, min: u8) -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_string()),
        (1..=max).prop_map(|n| format!("*/{n}")),
        (min..=max, min..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
        (min..=max, min..=max).prop_map(|(a, b)| format!("{a},{b}")),
        (min..=max).prop_map(|a| a.to_string()),
    ]
}

/// Expressions that fire often enough to check against a minute-by-minute walk.
fn dense_expr() -> impl Strategy<Value = String> {
    (field(59, 0), field(23, 0), field(7, 0)).prop_map(|(m, h, w)| format!("{m} {h} * * {w}"))
}

fn any_expr() -> impl Strategy<Value = String> {
    (
        field(59, 0),
        field(23, 0),
        field(31, 1),
        field(12, 1),
        field(7, 0),
    )
        .prop_map(|(m, h, d, mo, w)| format!("{m} {h} {d} {mo} {w}"))
}

/// Instants from 1990 to 2090, on any second.
fn instant() -> impl Strategy<Value = Timestamp> {
    (631_152_000i64..3_786_912_000).prop_map(|s| Timestamp::from_second(s).expect("in range"))
}

fn zone() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("UTC"),
        Just("Europe/Berlin"),
        Just("America/New_York"),
        Just("Australia/Lord_Howe"),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// In UTC the next firing is the first matching minute after `t`, by a walk.
    #[test]
    fn utc_next_is_the_first_matching_minute(expr in dense_expr(), t in instant()) {
        let s = sched(&expr, "UTC");
        let next = s.next_after_ts(t).expect("fires");
        let mut m = t.to_zoned(TimeZone::UTC).datetime();
        m = m.checked_add(1.minute()).unwrap().with().second(0).subsec_nanosecond(0).build().unwrap();
        // A dense expression fires within 8 days.
        let want = (0..8 * 24 * 60)
            .map(|i| m.checked_add(i.minutes()).unwrap())
            .find(|dt| matches(&s, *dt))
            .expect("a dense expression fires within a week");
        prop_assert_eq!(next.to_zoned(TimeZone::UTC).datetime(), want);
    }

    /// In any zone: later than `t`, on a whole minute, matching in local time
    /// (or at a gap's end), and nothing fires in between (asking again from any
    /// instant before it gives the same answer).
    #[test]
    fn next_is_later_whole_and_stable(
        expr in any_expr(), tz in zone(), t in instant(), frac in 0.0f64..1.0
    ) {
        let s = match Schedule::new(&expr, Some(tz)) {
            Ok(s) => s,
            Err(_) => return Ok(()), // never fires: refused, checked elsewhere
        };
        let next = s.next_after_ts(t).expect("fires");
        prop_assert!(next > t);
        prop_assert_eq!(next.as_second() % 60, 0);
        prop_assert!(next.as_second() - t.as_second() <= 13 * 366 * 86_400);
        let local = next.to_zoned(s.tz.clone()).datetime();
        let just_before = s.tz.to_ambiguous_timestamp(local.checked_sub(1.minute()).unwrap());
        let after_gap = matches!(just_before.offset(), AmbiguousOffset::Gap { .. });
        prop_assert!(matches(&s, local) || after_gap, "{} fired at {}", expr, local);
        let span = (next.as_second() - t.as_second()) as f64;
        let mid = Timestamp::from_second(t.as_second() + (span * frac) as i64).unwrap();
        if mid < next {
            prop_assert_eq!(s.next_after_ts(mid), Some(next));
        }
    }

    /// Firings are ordered: a later `t` never gets an earlier next firing.
    #[test]
    fn next_is_monotonic(expr in any_expr(), tz in zone(), a in instant(), b in instant()) {
        let Ok(s) = Schedule::new(&expr, Some(tz)) else { return Ok(()) };
        let (a, b) = (a.min(b), a.max(b));
        prop_assert!(s.next_after_ts(a) <= s.next_after_ts(b));
    }

    /// Any text at all: an answer, never a panic.
    #[test]
    fn any_text_is_parsed_or_refused(text in "[0-9a-z*/,@ -]{0,24}") {
        let _ = Schedule::new(&text, None);
    }
}
