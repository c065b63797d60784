//! The time source. Production reads the system clock; tests move it forward to check
//! expiry without sleeping. It lives in `AppState`, never in a global.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds, shifted by an offset only tests change.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Current time in Unix seconds.
    pub fn now(&self) -> i64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        system.saturating_add(self.offset.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::Relaxed);
    }
}

/// GitLab's API timestamp format: `2012-05-23T08:00:58.000Z`.
pub fn iso8601(unix_seconds: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let s = t.format(&Rfc3339).unwrap_or_default();
    // Rfc3339 gives `...:58Z`; GitLab always prints milliseconds.
    match s.strip_suffix('Z') {
        Some(stem) => format!("{stem}.000Z"),
        None => s,
    }
}

/// A timestamp for people: `2026-11-25 10:17 UTC`.
pub fn human(unix_seconds: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{} {:02}:{:02} UTC",
        date(unix_seconds),
        t.hour(),
        t.minute()
    )
}

/// A calendar date (`2024-05-31`), as GitLab shows token expiry.
pub fn date(unix_seconds: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// Parses `YYYY-MM-DD` into the Unix second at which that day ends (UTC): a token that
/// "expires on" a date is usable for the whole of that day, as in GitLab.
pub fn parse_date_end_of_day(s: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let day = time::Date::parse(s.trim(), &format).ok()?;
    let end = day.next_day()?.midnight().assume_utc().unix_timestamp();
    Some(end - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_has_milliseconds_and_zulu() {
        assert_eq!(iso8601(1_337_760_058), "2012-05-23T08:00:58.000Z");
    }

    #[test]
    fn dates_round_trip_to_the_end_of_the_day() {
        let end = parse_date_end_of_day("2024-05-31").unwrap_or_default();
        assert_eq!(date(end), "2024-05-31");
        assert_eq!(date(end + 1), "2024-06-01");
        assert!(parse_date_end_of_day("2024-13-01").is_none());
        assert!(parse_date_end_of_day("tomorrow").is_none());
    }

    #[test]
    fn advancing_a_clone_moves_the_original() {
        let clock = Clock::system();
        let before = clock.now();
        clock.clone().advance(3600);
        assert!(clock.now() >= before + 3600);
    }
}
