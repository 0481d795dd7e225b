//! Query parameters read the same way by every endpoint: times (RFC 3339,
//! within what the store can hold) and host ids.

use chrono::{DateTime, Utc};
use procmon_model::limits::is_storable_time;

use crate::error::ApiError;

/// Reads the query parameter `name`, an RFC 3339 time.
pub fn parse_time(name: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    let text = text.trim();
    let time = DateTime::parse_from_rfc3339(text)
        .or_else(|e| {
            // An unescaped "+02:00" arrives as " 02:00" (a query string's
            // '+' means space): read it as meant.
            match text.rsplit_once(' ') {
                Some((time, offset)) => DateTime::parse_from_rfc3339(&format!("{time}+{offset}")),
                None => Err(e),
            }
        })
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::InvalidQuery(format!(
                "`{name}` is {text:?}, not a time: give an RFC 3339 time with a date, a time \
                 and a zone, like 2024-05-01T12:00:00Z (UTC) or 2024-05-01T14:00:00+02:00"
            ))
        })?;
    if !is_storable_time(time) {
        return Err(ApiError::InvalidQuery(format!(
            "`{name}` is {}, outside the years 1677 to 2262 that procmon keeps",
            time.to_rfc3339()
        )));
    }
    Ok(time)
}

/// Reads `?host=`: a host's id, which is never empty and never has spaces
/// around it (they are refused when sent, so none is stored: say so rather
/// than answer "unknown host").
pub fn host_id(text: &str) -> Result<&str, ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::InvalidQuery(
            "`host` is empty: give the host's id as ?host=<id>".into(),
        ));
    }
    if text.trim() != text {
        return Err(ApiError::InvalidQuery(format!(
            "`host` {text:?} has spaces at its start or end; host ids never do"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(ApiError::InvalidQuery(format!(
            "`host` {text:?} has a control character; host ids never do"
        )));
    }
    Ok(text)
}

/// Reads an optional time parameter.
pub fn parse_optional(name: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    text.map(|t| parse_time(name, t)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ids_are_refused_empty_or_with_spaces_around() {
        assert_eq!(host_id("web-1").unwrap(), "web-1");
        assert!(host_id(" ").unwrap_err().to_string().contains("is empty"));
        assert!(host_id(" web-1")
            .unwrap_err()
            .to_string()
            .contains("spaces at its start or end"));
        assert!(host_id("web\u{0}1")
            .unwrap_err()
            .to_string()
            .contains("control character"));
    }

    #[test]
    fn times_are_read_or_refused_with_the_expected_form() {
        assert!(parse_time("at", "2024-05-01T12:00:00Z").is_ok());
        assert_eq!(
            parse_time("at", "2024-05-01T14:00:00 02:00").unwrap(),
            parse_time("at", "2024-05-01T12:00:00Z").unwrap()
        );
        let e = parse_time("at", "yesterday").unwrap_err().to_string();
        assert!(e.contains("2024-05-01T12:00:00Z"), "{e}");
        let e = parse_time("at", "9999-12-31T23:59:59Z")
            .unwrap_err()
            .to_string();
        assert!(e.contains("outside the years"), "{e}");
    }
}
