//! Timestamps: parsing RFC 3339 and `YYYY-MM-DD`, formatting, and conversion to
//! tantivy's date type. The engine keeps times as microseconds since the Unix epoch.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};

/// Parses an RFC 3339 timestamp or a `YYYY-MM-DD` date (midnight UTC) to
/// microseconds since the epoch, truncating below a microsecond.
pub fn parse(text: &str) -> Result<i64, String> {
    let datetime = if text.len() == 10 {
        Date::parse(text, format_description!("[year]-[month]-[day]"))
            .map(|d| d.midnight().assume_utc())
            .map_err(|e| format!("{text:?} is not a valid YYYY-MM-DD date ({e})"))?
    } else {
        OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
            format!("{text:?} is not an RFC 3339 timestamp or a YYYY-MM-DD date ({e})")
        })?
    };
    let nanos = datetime.unix_timestamp_nanos();
    i64::try_from(nanos.div_euclid(1000)).map_err(|_| format!("{text:?} is out of range"))
}

/// Formats microseconds since the epoch as RFC 3339 in UTC (`Z`), with a fraction
/// only when it is not zero.
pub fn format(micros: i64) -> String {
    let Ok(dt) = OffsetDateTime::from_unix_timestamp_nanos(micros as i128 * 1000) else {
        return micros.to_string();
    };
    let dt = dt.to_offset(UtcOffset::UTC);
    let (y, mo, d) = (dt.year(), u8::from(dt.month()), dt.day());
    let (h, mi, s) = (dt.hour(), dt.minute(), dt.second());
    let frac = dt.microsecond();
    if frac == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:06}Z")
    }
}

/// The tantivy date for microseconds since the epoch.
pub(crate) fn to_tantivy(micros: i64) -> tantivy::DateTime {
    tantivy::DateTime::from_timestamp_micros(micros)
}

/// The current time in microseconds since the epoch.
pub fn now_micros() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        let check = |input: &str, expected: Option<&str>| {
            assert_eq!(
                parse(input).ok().map(format).as_deref(),
                expected,
                "{input:?}"
            );
        };
        check("2021-08-07", Some("2021-08-07T00:00:00Z"));
        check("2021-08-07T12:30:00Z", Some("2021-08-07T12:30:00Z"));
        check(
            "2021-08-07T12:30:00.5-01:00",
            Some("2021-08-07T13:30:00.500000Z"),
        );
        check(
            "1969-12-31T23:59:59.999999Z",
            Some("1969-12-31T23:59:59.999999Z"),
        );
        check("2021-8-7", None);
        check("2021-13-01", None);
        check("2021-08-07 12:30:00", None);
        check("", None);
        check("now", None);
    }
}
