//! Pull-mode schedules (CONTRACT.md §3): parsing the `schedule` JSON, its canonical form, and the
//! fire times it produces. No IO and no clock: every computation takes the times it needs.
//!
//! A schedule is either
//!
//! - an **interval**, `{"every": "30s"}`: units `d`, `h`, `m`, `s` and `ms`, largest first, each at
//!   most once (`"1h30m"`, `"1d"`, `"90s"`), at least 1 s and at most 36500 d. Its fire times are
//!   `anchor + k × interval` for `k ≥ 1`, where the anchor is the time the schedule was set or
//!   resumed: a slow run does not shift later fire times, and setting a schedule does not fire it
//!   at once. The canonical form names the largest units (`"90m"` is shown as `"1h30m"`);
//! - a **cron expression** with a time zone, `{"cron": "*/5 * * * *", "timezone": "Europe/Paris"}`:
//!   the standard five fields (minute, hour, day of month, month, day of week; no seconds, no
//!   year), with the syntax of the `croner` crate (lists, ranges, steps, `JAN`–`DEC`, `SUN`–`SAT`,
//!   and its `L`, `W`, `#` and `+` extensions; day of month and day of week are OR-ed, as in Vixie
//!   cron) or one of the aliases `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`,
//!   `@midnight` and `@hourly`. The zone is an IANA name (`"UTC"` when absent). An expression that
//!   matches no date at all (`0 0 31 2 *`) is refused.
//!
//! A key whose value is `null` counts as absent; any key other than `every`, `cron` and
//! `timezone` is an error.
//!
//! # Time zones and daylight-saving time
//!
//! A cron schedule is matched against the wall clock of its time zone, and fires **once per
//! wall-clock match**. Where daylight-saving time bends the wall clock:
//!
//! - **Clocks go back (a repeated hour).** A wall-clock time that happens twice fires once, at its
//!   *first* occurrence (still on summer time), and is not fired again when the clock passes it a
//!   second time. `30 2 * * *` in Europe/Paris on 2026-10-25 fires at 02:30 CEST (00:30 UTC) only;
//!   `*/15 * * * *` fires at 02:00, 02:15, 02:30 and 02:45 CEST, then not until 03:00 CET, an hour
//!   and a quarter later.
//! - **Clocks go forward (a skipped hour).** A wall-clock time that does not exist fires once, at
//!   the first instant after the gap (the moment the clocks change). Several skipped matches, and a
//!   match at the very end of the gap, are one fire. `30 2 * * *` in Europe/Paris on 2026-03-29
//!   fires at 03:00 CEST (01:00 UTC); `0 * * * *` fires at 01:00 CET, 03:00 CEST, 04:00 CEST;
//!   `*/15 * * * *` fires at 01:45 CET, 03:00 CEST, 03:15 CEST.
//!
//! So a daily or hourly schedule never fires twice and never zero times on a transition day, and
//! fire times never go backwards. (Vixie cron has a similar rule, applied only to changes of
//! less than three hours; this rule applies to every transition of the IANA database.)

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use serde_json::{Map, Value};

/// Shortest interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Longest interval accepted (100 years of days); longer periods are a cron's business.
pub const MAX_INTERVAL: Duration = Duration::from_secs(36_500 * 86_400);

/// The zone of a cron schedule whose JSON names none.
pub const DEFAULT_TIMEZONE: Tz = Tz::UTC;

/// The five cron fields, in order, with the values each takes.
const CRON_FIELDS: [(&str, &str); 5] = [
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 or SUN-SAT, 0 and 7 being Sunday"),
];

/// When a pull workflow runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Every so often, counted from an anchor (see [`Schedule::next_after`]).
    Every(Duration),
    /// At the wall-clock times a cron expression matches, in a time zone.
    Cron {
        /// The expression as shown: the user's, with runs of blanks made single spaces.
        expression: String,
        timezone: Tz,
        /// The parsed expression.
        cron: CronPattern,
    },
}

/// A parsed five-field cron expression (opaque; build it with [`Schedule::parse`] or
/// [`Schedule::cron`]).
#[derive(Debug, Clone)]
pub struct CronPattern(Box<croner::Cron>); // boxed: croner's pattern is large

impl PartialEq for CronPattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.pattern == other.0.pattern
    }
}

/// Why a schedule is refused. Its `Display` is the message for the API's `422`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "a schedule is a JSON object such as {{\"every\": \"5m\"}} or \
         {{\"cron\": \"*/5 * * * *\", \"timezone\": \"UTC\"}}, got {0}"
    )]
    NotAnObject(&'static str),
    #[error("unknown schedule key {0:?}: a schedule has \"every\", or \"cron\" and \"timezone\"")]
    UnknownKey(String),
    #[error("a schedule has either \"every\" or \"cron\", not both")]
    BothEveryAndCron,
    #[error("a schedule needs \"every\" (such as \"5m\") or \"cron\" (such as \"*/5 * * * *\")")]
    NeitherEveryNorCron,
    #[error("\"timezone\" applies to a \"cron\" schedule only, not to \"every\"")]
    TimezoneWithoutCron,
    #[error("{key:?} must be a string, got {got}")]
    NotAString {
        key: &'static str,
        got: &'static str,
    },
    #[error("invalid interval {input:?}: {reason}")]
    InvalidInterval { input: String, reason: &'static str },
    #[error("interval {0:?} is under the 1 s minimum")]
    IntervalTooShort(String),
    #[error("interval {0:?} is over the 36500 d maximum: use a cron expression for rarer runs")]
    IntervalTooLong(String),
    #[error("invalid cron expression {expression:?}: {reason}")]
    InvalidCron { expression: String, reason: String },
    #[error("unknown time zone {0:?}: use an IANA name such as \"Europe/Paris\"")]
    UnknownTimeZone(String),
}

impl Schedule {
    /// Parses the `schedule` JSON the API receives (see the module documentation).
    pub fn parse(value: &Value) -> Result<Schedule, ScheduleError> {
        let Value::Object(map) = value else {
            return Err(ScheduleError::NotAnObject(json_kind(value)));
        };
        if let Some(key) = map
            .keys()
            .find(|k| !matches!(k.as_str(), "every" | "cron" | "timezone"))
        {
            return Err(ScheduleError::UnknownKey(key.clone()));
        }
        let every = string_field(map, "every")?;
        let cron = string_field(map, "cron")?;
        let timezone = string_field(map, "timezone")?;
        match (every, cron) {
            (Some(_), Some(_)) => Err(ScheduleError::BothEveryAndCron),
            (None, None) => Err(ScheduleError::NeitherEveryNorCron),
            (Some(_), None) if timezone.is_some() => Err(ScheduleError::TimezoneWithoutCron),
            (Some(every), None) => {
                // Range errors quote the interval as the user wrote it.
                Schedule::every(parse_interval(every)?).map_err(|error| match error {
                    ScheduleError::IntervalTooShort(_) => {
                        ScheduleError::IntervalTooShort(every.to_string())
                    }
                    ScheduleError::IntervalTooLong(_) => {
                        ScheduleError::IntervalTooLong(every.to_string())
                    }
                    other => other,
                })
            }
            (None, Some(cron)) => {
                let timezone = match timezone {
                    None => DEFAULT_TIMEZONE,
                    Some(name) => parse_timezone(name)?,
                };
                Schedule::cron(cron, timezone)
            }
        }
    }

    /// An interval schedule, if `interval` is within [`MIN_INTERVAL`]..=[`MAX_INTERVAL`].
    pub fn every(interval: Duration) -> Result<Schedule, ScheduleError> {
        if interval < MIN_INTERVAL {
            return Err(ScheduleError::IntervalTooShort(format_interval(interval)));
        }
        if interval > MAX_INTERVAL {
            return Err(ScheduleError::IntervalTooLong(format_interval(interval)));
        }
        Ok(Schedule::Every(interval))
    }

    /// A cron schedule: five fields or an alias, in `timezone`.
    pub fn cron(expression: &str, timezone: Tz) -> Result<Schedule, ScheduleError> {
        let expression = expression.split_whitespace().collect::<Vec<_>>().join(" ");
        let cron = parse_cron(&expression)?;
        Ok(Schedule::Cron {
            expression,
            timezone,
            cron,
        })
    }

    /// The canonical JSON form, stored and shown: `{"every": "1h30m"}` or
    /// `{"cron": "*/5 * * * *", "timezone": "UTC"}`. [`Schedule::parse`] reads it back unchanged.
    pub fn to_json(&self) -> Value {
        match self {
            Schedule::Every(interval) => serde_json::json!({ "every": format_interval(*interval) }),
            Schedule::Cron {
                expression,
                timezone,
                ..
            } => serde_json::json!({ "cron": expression, "timezone": timezone.name() }),
        }
    }

    /// The first fire time strictly after `after_ms` (epoch milliseconds, UTC).
    ///
    /// For [`Schedule::Every`], fire times are `anchor_ms + k × interval` for `k ≥ 1`; pass as
    /// `anchor_ms` the time the schedule was set or resumed. A cron schedule ignores `anchor_ms`
    /// and follows the daylight-saving rule of the module documentation.
    ///
    /// `None` when the schedule never fires again: a cron whose next match is past the year 5000,
    /// or a time out of the range of dates.
    pub fn next_after(&self, after_ms: i64, anchor_ms: i64) -> Option<i64> {
        match self {
            Schedule::Every(interval) => {
                let step = i128::try_from(interval.as_millis()).ok()?.max(1);
                let (after, anchor) = (i128::from(after_ms), i128::from(anchor_ms));
                let k = if after < anchor {
                    1
                } else {
                    (after - anchor) / step + 1
                };
                i64::try_from(anchor + k * step).ok()
            }
            Schedule::Cron { timezone, cron, .. } => cron_next_after(&cron.0, *timezone, after_ms),
        }
    }

    /// The next `n` fire times after `after_ms`, increasing (fewer if the schedule ends).
    pub fn upcoming(&self, after_ms: i64, anchor_ms: i64, n: usize) -> Vec<i64> {
        let mut times = Vec::with_capacity(n);
        let mut after = after_ms;
        while times.len() < n {
            match self.next_after(after, anchor_ms) {
                Some(next) => {
                    times.push(next);
                    after = next;
                }
                None => break,
            }
        }
        times
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Every(interval) => write!(f, "every {}", format_interval(*interval)),
            Schedule::Cron {
                expression,
                timezone,
                ..
            } => write!(f, "cron \"{expression}\" ({})", timezone.name()),
        }
    }
}

impl serde::Serialize for Schedule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Schedule::parse(&value).map_err(serde::de::Error::custom)
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn string_field<'a>(
    map: &'a Map<String, Value>,
    key: &'static str,
) -> Result<Option<&'a str>, ScheduleError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ScheduleError::NotAString {
            key,
            got: json_kind(other),
        }),
    }
}

fn parse_timezone(name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name).map_err(|_| ScheduleError::UnknownTimeZone(name.to_string()))
}

// ---- intervals ----

/// Interval units, largest first, with their length in milliseconds.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses `"1h30m"`-style intervals; the range is checked by [`Schedule::every`].
fn parse_interval(input: &str) -> Result<Duration, ScheduleError> {
    let invalid = |reason| ScheduleError::InvalidInterval {
        input: input.to_string(),
        reason,
    };
    const FORMAT: &str =
        "expected numbers each followed by a unit (d, h, m, s or ms), as in \"30s\", \"5m\" or \"1h30m\"";
    if input.is_empty() {
        return Err(invalid(FORMAT));
    }
    let mut rest = input;
    let mut total: u64 = 0;
    let mut next_unit = 0; // index into UNITS of the largest unit still allowed
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid(FORMAT));
        }
        let too_long = || ScheduleError::IntervalTooLong(input.to_string());
        let number: u64 = rest[..digits].parse().map_err(|_| too_long())?;
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(invalid(FORMAT));
        };
        if index < next_unit {
            return Err(invalid(
                "units go from the largest to the smallest, each at most once, as in \"1h30m\"",
            ));
        }
        next_unit = index + 1;
        total = number
            .checked_mul(UNITS[index].1)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(too_long)?;
    }
    Ok(Duration::from_millis(total))
}

/// The canonical form of an interval: largest units first, zero units left out (`"1h30m"`).
fn format_interval(interval: Duration) -> String {
    let mut ms = interval.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (name, unit) in UNITS {
        let unit = u128::from(unit);
        if ms >= unit {
            out.push_str(&format!("{}{name}", ms / unit));
            ms %= unit;
        }
    }
    out
}

// ---- cron ----

fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
}

/// Parses a five-field expression or an alias, and checks that it matches some date.
fn parse_cron(expression: &str) -> Result<CronPattern, ScheduleError> {
    let invalid = |reason: String| ScheduleError::InvalidCron {
        expression: expression.to_string(),
        reason,
    };
    let fields = match expression.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        alias if alias.starts_with('@') => {
            return Err(invalid(
                "unknown alias: use @yearly, @annually, @monthly, @weekly, @daily, @midnight \
                 or @hourly"
                    .to_string(),
            ))
        }
        _ => expression,
    };
    let count = fields.split_whitespace().count();
    if count != 5 {
        return Err(invalid(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week), got {count}"
        )));
    }
    let cron = parser()
        .parse(fields)
        .map_err(|e| invalid(explain(fields, e)))?;
    // Refuse what can never fire (such as February 30th): the search runs to the year 5000.
    let start = DateTime::<Utc>::UNIX_EPOCH.naive_utc();
    if cron.find_next_occurrence(&start, false).is_err() {
        return Err(invalid("it matches no date".to_string()));
    }
    Ok(CronPattern(Box::new(cron)))
}

/// Says which field a parse error comes from, when one field alone is at fault.
fn explain(fields: &str, error: croner::errors::CronError) -> String {
    let parts: Vec<&str> = fields.split_whitespace().collect();
    for (index, (name, values)) in CRON_FIELDS.iter().enumerate() {
        let probe: Vec<&str> = (0..5)
            .map(|i| if i == index { parts[i] } else { "*" })
            .collect();
        if let Err(field_error) = parser().parse(&probe.join(" ")) {
            return format!(
                "{name} field {:?}: {} (the {name} field takes {values})",
                parts[index],
                croner_message(&field_error)
            );
        }
    }
    croner_message(&error)
}

/// A croner error's message, without croner's prefixes.
fn croner_message(error: &croner::errors::CronError) -> String {
    use croner::errors::CronError;
    match error {
        CronError::InvalidPattern(message)
        | CronError::IllegalCharacters(message)
        | CronError::ComponentError(message) => message.trim_end_matches('.').to_string(),
        other => other.to_string(),
    }
}

/// Bounds the matches skipped while looking for a fire time after `after` (a repeated or skipped
/// range of an every-minute schedule passes 60 matches per hour; no zone repeats or skips a day).
const MAX_SKIPPED_MATCHES: usize = 3 * 24 * 60;

fn cron_next_after(cron: &croner::Cron, timezone: Tz, after_ms: i64) -> Option<i64> {
    let after = DateTime::<Utc>::from_timestamp_millis(after_ms)?;
    // Matches are whole minutes: searching strictly after the wall clock truncated to the second
    // misses none that falls after `after`.
    let mut cursor = after
        .with_timezone(&timezone)
        .naive_local()
        .with_nanosecond(0)?;
    for _ in 0..MAX_SKIPPED_MATCHES {
        let wall = cron.find_next_occurrence(&cursor, false).ok()?;
        let fire = fire_instant(timezone, wall)?.timestamp_millis();
        // Wall times on or before `after`'s may still map after it (and conversely, when `after`
        // is in the second pass of a repeated range): the fire instant decides.
        if fire > after_ms {
            return Some(fire);
        }
        cursor = wall;
    }
    None
}

/// The instant a matching wall-clock time fires at: itself; its first occurrence when it happens
/// twice; the end of the gap when it does not exist.
fn fire_instant(timezone: Tz, wall: NaiveDateTime) -> Option<DateTime<Tz>> {
    match timezone.from_local_datetime(&wall) {
        LocalResult::Single(at) => Some(at),
        LocalResult::Ambiguous(first, _) => Some(first),
        LocalResult::None => gap_end(timezone, wall),
    }
}

/// The first instant after the gap that `wall` falls in: the moment the clocks change.
fn gap_end(timezone: Tz, wall: NaiveDateTime) -> Option<DateTime<Tz>> {
    let exists = |t: NaiveDateTime| !matches!(timezone.from_local_datetime(&t), LocalResult::None);
    // The first existing whole minute, then back second by second to the gap's exact end (some
    // historical offsets have seconds).
    let mut end = wall;
    for _ in 0..=2 * 24 * 60 {
        if exists(end) {
            break;
        }
        end = end.checked_add_signed(TimeDelta::minutes(1))?;
    }
    if !exists(end) {
        return None;
    }
    for _ in 0..60 {
        let earlier = end.checked_sub_signed(TimeDelta::seconds(1))?;
        if earlier < wall || !exists(earlier) {
            break;
        }
        end = earlier;
    }
    timezone.from_local_datetime(&end).earliest()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Epoch milliseconds of an RFC 3339 time.
    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    /// An epoch-milliseconds time as RFC 3339 UTC, for readable assertions.
    fn utc(ms: i64) -> String {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    fn schedule(value: Value) -> Schedule {
        Schedule::parse(&value).unwrap()
    }

    fn cron(expression: &str, timezone: &str) -> Schedule {
        schedule(json!({ "cron": expression, "timezone": timezone }))
    }

    fn error(value: Value) -> String {
        Schedule::parse(&value).unwrap_err().to_string()
    }

    /// Every fire time in `[from, to)`, in UTC.
    fn fires(schedule: &Schedule, from: &str, to: &str) -> Vec<String> {
        let (from, to) = (ms(from), ms(to));
        let mut out = Vec::new();
        let mut after = from - 1;
        while let Some(next) = schedule.next_after(after, from) {
            if next >= to {
                break;
            }
            out.push(utc(next));
            after = next;
        }
        out
    }

    // ---- intervals ----

    #[test]
    fn interval_accepts_each_unit_and_combinations() {
        for (input, seconds) in [
            ("30s", 30),
            ("5m", 300),
            ("1h", 3600),
            ("1d", 86_400),
            ("1h30m", 5400),
            ("1d2h3m4s", 93_784),
        ] {
            assert_eq!(
                schedule(json!({ "every": input })),
                Schedule::Every(Duration::from_secs(seconds)),
                "{input}"
            );
        }
    }

    #[test]
    fn interval_json_is_normalised_to_the_largest_units() {
        for (input, canonical) in [
            ("90m", "1h30m"),
            ("60s", "1m"),
            ("86400s", "1d"),
            ("1500ms", "1s500ms"),
            ("5m", "5m"),
        ] {
            assert_eq!(
                schedule(json!({ "every": input })).to_json(),
                json!({ "every": canonical }),
                "{input}"
            );
        }
    }

    #[test]
    fn interval_of_exactly_one_second_is_accepted() {
        assert_eq!(
            schedule(json!({"every": "1s"})),
            Schedule::Every(Duration::from_secs(1))
        );
        assert_eq!(
            schedule(json!({"every": "1000ms"})),
            Schedule::Every(Duration::from_secs(1))
        );
    }

    #[test]
    fn interval_under_one_second_is_refused() {
        assert_eq!(
            error(json!({"every": "500ms"})),
            r#"interval "500ms" is under the 1 s minimum"#
        );
        assert_eq!(
            error(json!({"every": "0s"})),
            r#"interval "0s" is under the 1 s minimum"#
        );
    }

    #[test]
    fn interval_over_the_maximum_is_refused() {
        assert_eq!(
            error(json!({"every": "36501d"})),
            r#"interval "36501d" is over the 36500 d maximum: use a cron expression for rarer runs"#
        );
        assert!(error(json!({"every": "99999999999999999999999s"})).contains("maximum"));
    }

    #[test]
    fn interval_without_a_unit_or_with_an_unknown_unit_is_refused() {
        for bad in ["30", "", "5 m", "5min", "1w", "h", "1.5h", "-5m", "5M"] {
            assert_eq!(
                error(json!({ "every": bad })),
                format!(
                    "invalid interval {bad:?}: expected numbers each followed by a unit \
                     (d, h, m, s or ms), as in \"30s\", \"5m\" or \"1h30m\""
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn interval_units_out_of_order_or_repeated_are_refused() {
        for bad in ["30m1h", "1m1m", "5s1d"] {
            assert_eq!(
                error(json!({ "every": bad })),
                format!(
                    "invalid interval {bad:?}: units go from the largest to the smallest, \
                     each at most once, as in \"1h30m\""
                )
            );
        }
    }

    #[test]
    fn interval_fires_one_interval_after_the_anchor() {
        let every = schedule(json!({"every": "5m"}));
        let anchor = ms("2026-01-01T12:00:00Z");
        assert_eq!(
            every.next_after(anchor, anchor).map(utc).unwrap(),
            "2026-01-01T12:05:00Z"
        );
    }

    #[test]
    fn interval_next_is_strictly_after_a_fire_time() {
        let every = schedule(json!({"every": "5m"}));
        let anchor = ms("2026-01-01T12:00:00Z");
        let fire = ms("2026-01-01T12:05:00Z");
        assert_eq!(
            every.next_after(fire, anchor).map(utc).unwrap(),
            "2026-01-01T12:10:00Z"
        );
        assert_eq!(
            every.next_after(fire - 1, anchor).map(utc).unwrap(),
            "2026-01-01T12:05:00Z"
        );
    }

    #[test]
    fn interval_does_not_drift_after_a_slow_run() {
        // A run due at 12:05 that ends at 12:07:42 is followed by the 12:10 fire, not 12:12:42.
        let every = schedule(json!({"every": "5m"}));
        let anchor = ms("2026-01-01T12:00:00Z");
        assert_eq!(
            every
                .next_after(ms("2026-01-01T12:07:42.123Z"), anchor)
                .map(utc)
                .unwrap(),
            "2026-01-01T12:10:00Z"
        );
    }

    #[test]
    fn interval_after_downtime_resumes_on_the_anchor_grid() {
        let every = schedule(json!({"every": "1h30m"}));
        let anchor = ms("2026-01-01T00:00:00Z");
        assert_eq!(
            every
                .next_after(ms("2026-01-03T10:00:00Z"), anchor)
                .map(utc)
                .unwrap(),
            "2026-01-03T10:30:00Z"
        );
    }

    #[test]
    fn interval_before_its_anchor_fires_one_interval_after_the_anchor() {
        let every = schedule(json!({"every": "1m"}));
        let anchor = ms("2026-01-01T12:00:00Z");
        assert_eq!(
            every
                .next_after(ms("2026-01-01T11:00:00Z"), anchor)
                .map(utc)
                .unwrap(),
            "2026-01-01T12:01:00Z"
        );
    }

    // ---- cron, UTC and zones ----

    #[test]
    fn cron_every_five_minutes_in_utc() {
        let every_five = schedule(json!({"cron": "*/5 * * * *"}));
        assert_eq!(
            every_five.upcoming(ms("2026-05-04T10:02:30Z"), 0, 3),
            vec![
                ms("2026-05-04T10:05:00Z"),
                ms("2026-05-04T10:10:00Z"),
                ms("2026-05-04T10:15:00Z"),
            ]
        );
    }

    #[test]
    fn cron_next_is_strictly_after_a_fire_time() {
        let every_five = schedule(json!({"cron": "*/5 * * * *"}));
        let fire = ms("2026-05-04T10:05:00Z");
        assert_eq!(
            every_five.next_after(fire, 0).map(utc).unwrap(),
            "2026-05-04T10:10:00Z"
        );
        assert_eq!(
            every_five.next_after(fire - 1, 0).map(utc).unwrap(),
            "2026-05-04T10:05:00Z"
        );
    }

    #[test]
    fn cron_timezone_defaults_to_utc() {
        assert_eq!(
            schedule(json!({"cron": "0 9 * * *"})).to_json(),
            json!({"cron": "0 9 * * *", "timezone": "UTC"})
        );
    }

    #[test]
    fn cron_in_paris_at_nine_is_eight_utc_in_winter() {
        let nine = cron("0 9 * * *", "Europe/Paris");
        assert_eq!(
            nine.next_after(ms("2026-01-15T00:00:00Z"), 0)
                .map(utc)
                .unwrap(),
            "2026-01-15T08:00:00Z"
        );
    }

    #[test]
    fn cron_in_paris_at_nine_is_seven_utc_in_summer() {
        let nine = cron("0 9 * * *", "Europe/Paris");
        assert_eq!(
            nine.next_after(ms("2026-07-15T00:00:00Z"), 0)
                .map(utc)
                .unwrap(),
            "2026-07-15T07:00:00Z"
        );
    }

    #[test]
    fn cron_ignores_the_anchor() {
        let nine = cron("0 9 * * *", "Europe/Paris");
        let after = ms("2026-07-15T00:00:00Z");
        assert_eq!(nine.next_after(after, 0), nine.next_after(after, after));
    }

    #[test]
    fn cron_aliases_are_accepted() {
        let hourly = schedule(json!({"cron": "@hourly"}));
        assert_eq!(
            hourly
                .next_after(ms("2026-05-04T10:02:00Z"), 0)
                .map(utc)
                .unwrap(),
            "2026-05-04T11:00:00Z"
        );
        assert_eq!(
            hourly.to_json(),
            json!({"cron": "@hourly", "timezone": "UTC"})
        );
        let daily = cron("@daily", "America/New_York");
        assert_eq!(
            daily
                .next_after(ms("2026-05-04T10:02:00Z"), 0)
                .map(utc)
                .unwrap(),
            "2026-05-05T04:00:00Z"
        );
    }

    #[test]
    fn cron_day_names_and_month_names_are_accepted() {
        let weekdays = schedule(json!({"cron": "0 8 * JAN-MAR MON-FRI"}));
        // 2026-01-03 is a Saturday.
        assert_eq!(
            weekdays
                .next_after(ms("2026-01-03T00:00:00Z"), 0)
                .map(utc)
                .unwrap(),
            "2026-01-05T08:00:00Z"
        );
    }

    #[test]
    fn cron_expression_blanks_are_normalised() {
        assert_eq!(
            schedule(json!({"cron": "  */5   *  * * * "})).to_json(),
            json!({"cron": "*/5 * * * *", "timezone": "UTC"})
        );
    }

    // ---- DST, Europe/Paris: forward 2026-03-29 02:00 CET → 03:00 CEST (01:00 UTC),
    //      back 2026-10-25 03:00 CEST → 02:00 CET (01:00 UTC) ----

    #[test]
    fn dst_paris_spring_daily_in_the_gap_fires_once_at_the_end_of_the_gap() {
        let s = cron("30 2 * * *", "Europe/Paris");
        assert_eq!(
            fires(&s, "2026-03-28T00:00:00Z", "2026-03-31T00:00:00Z"),
            [
                "2026-03-28T01:30:00Z", // 02:30 CET
                "2026-03-29T01:00:00Z", // 03:00 CEST: 02:30 does not exist
                "2026-03-30T00:30:00Z", // 02:30 CEST
            ]
        );
    }

    #[test]
    fn dst_paris_spring_hourly_fires_once_for_the_skipped_hour() {
        let s = cron("0 * * * *", "Europe/Paris");
        assert_eq!(
            fires(&s, "2026-03-28T23:30:00Z", "2026-03-29T02:30:00Z"),
            [
                "2026-03-29T00:00:00Z", // 01:00 CET
                "2026-03-29T01:00:00Z", // 03:00 CEST, also standing for 02:00
                "2026-03-29T02:00:00Z", // 04:00 CEST
            ]
        );
    }

    #[test]
    fn dst_paris_spring_quarter_hours_fold_the_gap_into_one_fire() {
        let s = cron("*/15 * * * *", "Europe/Paris");
        assert_eq!(
            fires(&s, "2026-03-29T00:30:00Z", "2026-03-29T01:31:00Z"),
            [
                "2026-03-29T00:30:00Z", // 01:30 CET
                "2026-03-29T00:45:00Z", // 01:45 CET
                "2026-03-29T01:00:00Z", // 03:00 CEST (02:00–02:45 and 03:00)
                "2026-03-29T01:15:00Z", // 03:15 CEST
                "2026-03-29T01:30:00Z", // 03:30 CEST
            ]
        );
    }

    #[test]
    fn dst_paris_autumn_daily_in_the_repeated_hour_fires_once_at_its_first_occurrence() {
        let s = cron("30 2 * * *", "Europe/Paris");
        assert_eq!(
            fires(&s, "2026-10-24T00:00:00Z", "2026-10-27T00:00:00Z"),
            [
                "2026-10-24T00:30:00Z", // 02:30 CEST
                "2026-10-25T00:30:00Z", // 02:30 CEST, not again at 02:30 CET
                "2026-10-26T01:30:00Z", // 02:30 CET
            ]
        );
    }

    #[test]
    fn dst_paris_autumn_hourly_does_not_repeat_the_repeated_hour() {
        let s = cron("0 * * * *", "Europe/Paris");
        assert_eq!(
            fires(&s, "2026-10-24T23:30:00Z", "2026-10-25T03:30:00Z"),
            [
                "2026-10-25T00:00:00Z", // 02:00 CEST
                // 01:00 UTC is 02:00 CET again: not fired.
                "2026-10-25T02:00:00Z", // 03:00 CET
                "2026-10-25T03:00:00Z", // 04:00 CET
            ]
        );
    }

    #[test]
    fn dst_paris_autumn_quarter_hours_do_not_repeat_the_repeated_hour() {
        let s = cron("*/15 * * * *", "Europe/Paris");
        assert_eq!(
            fires(&s, "2026-10-24T23:45:00Z", "2026-10-25T02:16:00Z"),
            [
                "2026-10-24T23:45:00Z", // 01:45 CEST
                "2026-10-25T00:00:00Z", // 02:00 CEST
                "2026-10-25T00:15:00Z",
                "2026-10-25T00:30:00Z",
                "2026-10-25T00:45:00Z", // 02:45 CEST
                "2026-10-25T02:00:00Z", // 03:00 CET
                "2026-10-25T02:15:00Z",
            ]
        );
    }

    #[test]
    fn dst_repeated_hour_asked_from_its_second_pass_goes_on_after_it() {
        // 01:10 UTC is 02:10 CET, in the second pass: 02:15 CET was already fired as 02:15 CEST.
        let s = cron("*/15 * * * *", "Europe/Paris");
        assert_eq!(
            s.next_after(ms("2026-10-25T01:10:00Z"), 0)
                .map(utc)
                .unwrap(),
            "2026-10-25T02:00:00Z"
        );
    }

    #[test]
    fn dst_gap_end_asked_from_the_gap_end_goes_on_after_it() {
        let s = cron("30 2 * * *", "Europe/Paris");
        assert_eq!(
            s.next_after(ms("2026-03-29T01:00:00Z"), 0)
                .map(utc)
                .unwrap(),
            "2026-03-30T00:30:00Z"
        );
    }

    // ---- DST, America/New_York: forward 2026-03-08 02:00 EST → 03:00 EDT (07:00 UTC),
    //      back 2026-11-01 02:00 EDT → 01:00 EST (06:00 UTC) ----

    #[test]
    fn dst_new_york_spring_daily_in_the_gap_fires_once_at_the_end_of_the_gap() {
        let s = cron("30 2 * * *", "America/New_York");
        assert_eq!(
            fires(&s, "2026-03-07T00:00:00Z", "2026-03-10T00:00:00Z"),
            [
                "2026-03-07T07:30:00Z", // 02:30 EST
                "2026-03-08T07:00:00Z", // 03:00 EDT: 02:30 does not exist
                "2026-03-09T06:30:00Z", // 02:30 EDT
            ]
        );
    }

    #[test]
    fn dst_new_york_spring_hourly_fires_once_for_the_skipped_hour() {
        let s = cron("0 * * * *", "America/New_York");
        assert_eq!(
            fires(&s, "2026-03-08T05:30:00Z", "2026-03-08T08:30:00Z"),
            [
                "2026-03-08T06:00:00Z", // 01:00 EST
                "2026-03-08T07:00:00Z", // 03:00 EDT, also standing for 02:00
                "2026-03-08T08:00:00Z", // 04:00 EDT
            ]
        );
    }

    #[test]
    fn dst_new_york_spring_quarter_hours_fold_the_gap_into_one_fire() {
        let s = cron("*/15 * * * *", "America/New_York");
        assert_eq!(
            fires(&s, "2026-03-08T06:40:00Z", "2026-03-08T07:20:00Z"),
            [
                "2026-03-08T06:45:00Z", // 01:45 EST
                "2026-03-08T07:00:00Z", // 03:00 EDT (02:00–02:45 and 03:00)
                "2026-03-08T07:15:00Z", // 03:15 EDT
            ]
        );
    }

    #[test]
    fn dst_new_york_autumn_daily_after_the_repeated_hour_fires_once() {
        // In New York the repeated hour is 01:00–01:59, so 02:30 happens once (EST).
        let s = cron("30 2 * * *", "America/New_York");
        assert_eq!(
            fires(&s, "2026-10-31T00:00:00Z", "2026-11-03T00:00:00Z"),
            [
                "2026-10-31T06:30:00Z", // 02:30 EDT
                "2026-11-01T07:30:00Z", // 02:30 EST
                "2026-11-02T07:30:00Z", // 02:30 EST
            ]
        );
    }

    #[test]
    fn dst_new_york_autumn_daily_in_the_repeated_hour_fires_once_at_its_first_occurrence() {
        let s = cron("30 1 * * *", "America/New_York");
        assert_eq!(
            fires(&s, "2026-10-31T12:00:00Z", "2026-11-02T12:00:00Z"),
            [
                "2026-11-01T05:30:00Z", // 01:30 EDT, not again at 01:30 EST
                "2026-11-02T06:30:00Z", // 01:30 EST
            ]
        );
    }

    #[test]
    fn dst_new_york_autumn_hourly_does_not_repeat_the_repeated_hour() {
        let s = cron("0 * * * *", "America/New_York");
        assert_eq!(
            fires(&s, "2026-11-01T03:30:00Z", "2026-11-01T08:30:00Z"),
            [
                "2026-11-01T04:00:00Z", // 00:00 EDT
                "2026-11-01T05:00:00Z", // 01:00 EDT
                // 06:00 UTC is 01:00 EST again: not fired.
                "2026-11-01T07:00:00Z", // 02:00 EST
                "2026-11-01T08:00:00Z", // 03:00 EST
            ]
        );
    }

    #[test]
    fn dst_new_york_autumn_quarter_hours_do_not_repeat_the_repeated_hour() {
        let s = cron("*/15 * * * *", "America/New_York");
        assert_eq!(
            fires(&s, "2026-11-01T05:40:00Z", "2026-11-01T07:20:00Z"),
            [
                "2026-11-01T05:45:00Z", // 01:45 EDT
                "2026-11-01T07:00:00Z", // 02:00 EST
                "2026-11-01T07:15:00Z",
            ]
        );
    }

    // ---- parse errors ----

    #[test]
    fn parse_refuses_an_unknown_time_zone() {
        assert_eq!(
            error(json!({"cron": "0 9 * * *", "timezone": "Mars/Base"})),
            r#"unknown time zone "Mars/Base": use an IANA name such as "Europe/Paris""#
        );
    }

    #[test]
    fn parse_refuses_a_cron_with_the_wrong_number_of_fields() {
        assert_eq!(
            error(json!({"cron": "* * *"})),
            "invalid cron expression \"* * *\": expected 5 fields \
             (minute hour day-of-month month day-of-week), got 3"
        );
        // Seconds and years are not part of flowd's cron.
        assert!(error(json!({"cron": "0 */5 * * * *"})).ends_with("got 6"));
        assert!(error(json!({"cron": "0 0 * * * * 2026"})).ends_with("got 7"));
        assert!(error(json!({"cron": ""})).ends_with("got 0"));
    }

    #[test]
    fn parse_refuses_a_cron_field_out_of_range_naming_the_field() {
        assert_eq!(
            error(json!({"cron": "61 * * * *"})),
            "invalid cron expression \"61 * * * *\": minute field \"61\": \
             Number out of bounds (the minute field takes 0-59)"
        );
        assert_eq!(
            error(json!({"cron": "0 9 * 13 *"})),
            "invalid cron expression \"0 9 * 13 *\": month field \"13\": \
             Number out of bounds (the month field takes 1-12 or JAN-DEC)"
        );
    }

    #[test]
    fn parse_refuses_a_cron_with_garbage_characters() {
        let message = error(json!({"cron": "x * * * *"}));
        assert!(
            message.starts_with(r#"invalid cron expression "x * * * *": minute field "x": "#),
            "{message}"
        );
        assert!(
            message.ends_with("(the minute field takes 0-59)"),
            "{message}"
        );
    }

    #[test]
    fn parse_refuses_a_single_number_step() {
        // Standard cron steps a wildcard or a range: "*/5", "0-30/5", not "0/5".
        let message = error(json!({"cron": "0/5 * * * *"}));
        assert!(
            message.starts_with(r#"invalid cron expression "0/5 * * * *": minute field "0/5": "#),
            "{message}"
        );
    }

    #[test]
    fn parse_refuses_a_cron_that_matches_no_date() {
        assert_eq!(
            error(json!({"cron": "0 0 31 2 *"})),
            r#"invalid cron expression "0 0 31 2 *": it matches no date"#
        );
    }

    #[test]
    fn parse_refuses_an_unknown_alias() {
        assert!(error(json!({"cron": "@reboot"})).contains("unknown alias"));
    }

    #[test]
    fn parse_refuses_unknown_keys() {
        assert_eq!(
            error(json!({"every": "5m", "jitter": "1s"})),
            r#"unknown schedule key "jitter": a schedule has "every", or "cron" and "timezone""#
        );
    }

    #[test]
    fn parse_refuses_both_every_and_cron() {
        assert_eq!(
            error(json!({"every": "5m", "cron": "* * * * *"})),
            r#"a schedule has either "every" or "cron", not both"#
        );
    }

    #[test]
    fn parse_refuses_neither_every_nor_cron() {
        let neither =
            r#"a schedule needs "every" (such as "5m") or "cron" (such as "*/5 * * * *")"#;
        assert_eq!(error(json!({})), neither);
        assert_eq!(error(json!({"timezone": "UTC"})), neither);
        assert_eq!(error(json!({"every": null})), neither);
    }

    #[test]
    fn parse_refuses_a_timezone_with_an_interval() {
        assert_eq!(
            error(json!({"every": "5m", "timezone": "UTC"})),
            r#""timezone" applies to a "cron" schedule only, not to "every""#
        );
    }

    #[test]
    fn parse_refuses_values_that_are_not_strings() {
        assert_eq!(
            error(json!({"every": 30})),
            r#""every" must be a string, got a number"#
        );
        assert_eq!(
            error(json!({"cron": "* * * * *", "timezone": 1})),
            r#""timezone" must be a string, got a number"#
        );
    }

    #[test]
    fn parse_refuses_a_schedule_that_is_not_an_object() {
        assert!(error(json!("5m")).ends_with("got a string"));
        assert!(error(json!(null)).ends_with("got null"));
    }

    // ---- upcoming and round trips ----

    #[test]
    fn upcoming_gives_five_increasing_times() {
        for s in [
            schedule(json!({"every": "1h30m"})),
            cron("*/15 * * * *", "Europe/Paris"),
        ] {
            let times = s.upcoming(ms("2026-03-29T00:10:00Z"), ms("2026-03-29T00:00:00Z"), 5);
            assert_eq!(times.len(), 5, "{s}");
            assert!(times.windows(2).all(|w| w[0] < w[1]), "{s}: {times:?}");
            assert!(times[0] > ms("2026-03-29T00:10:00Z"), "{s}");
        }
    }

    #[test]
    fn to_json_round_trips_through_parse() {
        for value in [
            json!({"every": "1h30m"}),
            json!({"every": "1s500ms"}),
            json!({"cron": "*/5 * * * *", "timezone": "UTC"}),
            json!({"cron": "30 2 * * MON-FRI", "timezone": "Europe/Paris"}),
            json!({"cron": "@daily", "timezone": "America/New_York"}),
        ] {
            let parsed = schedule(value.clone());
            assert_eq!(parsed.to_json(), value);
            assert_eq!(schedule(parsed.to_json()), parsed);
        }
    }

    #[test]
    fn serde_uses_the_canonical_json() {
        let s = cron("0 9 * * *", "Europe/Paris");
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Schedule>(&text).unwrap(), s);
        assert!(serde_json::from_str::<Schedule>(r#"{"every":"1ms"}"#).is_err());
    }
}
