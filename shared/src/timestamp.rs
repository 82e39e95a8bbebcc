//! Instants as the API takes and gives them: RFC 3339 on the wire, `timestamptz` in
//! PostgreSQL. Every timestamp a client sends is parsed here, and only the range that
//! both ends can hold is accepted: [`EARLIEST`] through [`LATEST`], in UTC. RFC 3339 has
//! four-digit years; an offset can carry an instant that reads as year 0000 or 9999
//! across a year boundary (`0000-01-01T00:00:00+01:00` is in year -1), which the
//! database would store and no response could render, so the instant itself is checked.
//!
//! Reading back, [`Stored`] decodes a `timestamptz` whatever it holds (a row written
//! around the API may hold `infinity` or year 20000, which sqlx's own decoding panics
//! on) and renders what it cannot show as `null`.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use time::{OffsetDateTime, UtcOffset};

use crate::error::ApiError;
use crate::http::query_param;

/// The first instant the API accepts and renders.
pub const EARLIEST: OffsetDateTime = datetime!(0000-01-01 0:00 UTC);
/// The last one: PostgreSQL keeps microseconds, so nothing finer fits below year 10000.
pub const LATEST: OffsetDateTime = datetime!(9999-12-31 23:59:59.999999 UTC);

/// What a client is told when a timestamp is out of range.
pub const RANGE: &str = "must be between 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z";

/// `raw` as an instant in UTC, if it is RFC 3339 and within [`EARLIEST`]..=[`LATEST`];
/// otherwise the problem, in words that follow a field name.
pub fn parse(raw: &str) -> Result<OffsetDateTime, &'static str> {
    let parsed =
        OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| "must be an RFC 3339 timestamp")?;
    in_range(parsed).ok_or(RANGE)
}

/// `at` in UTC, if it lies within [`EARLIEST`]..=[`LATEST`]. The offset may carry the
/// instant past year 9999 in UTC, where `time` cannot go: that is `None` too, not a panic.
pub fn in_range(at: OffsetDateTime) -> Option<OffsetDateTime> {
    at.checked_to_offset(UtcOffset::UTC)
        .filter(|utc| (EARLIEST..=LATEST).contains(utc))
}

/// A timestamp field of a request: a 400 naming `field` unless [`parse`] accepts it.
pub fn parse_field(field: &str, raw: &str) -> Result<OffsetDateTime, ApiError> {
    parse(raw).map_err(|problem| ApiError::invalid_field(field, problem))
}

/// A timestamp query parameter; absent (or blank) is `None`.
pub fn query(
    req: &ApiGatewayV2httpRequest,
    name: &str,
) -> Result<Option<OffsetDateTime>, ApiError> {
    query_param(req, name)
        .map(|raw| parse_field(name, &raw))
        .transpose()
}

/// An optional timestamp field of a JSON body:
/// `#[serde(default, deserialize_with = "encache_shared::timestamp::optional")]`.
/// Only a string or `null` is accepted; the error names the field through `json_body`.
pub fn optional<'de, D: Deserializer<'de>>(de: D) -> Result<Option<OffsetDateTime>, D::Error> {
    Option::<String>::deserialize(de)?
        .map(|raw| parse(&raw).map_err(serde::de::Error::custom))
        .transpose()
}

/// An instant as RFC 3339, or `None` outside the range RFC 3339 can write.
pub fn render(at: OffsetDateTime) -> Option<String> {
    in_range(at)?.format(&Rfc3339).ok()
}

/// A `timestamptz` as read back from PostgreSQL: the instant, or `None` when the API
/// cannot render it (a row written around the API). Serializes as RFC 3339 or `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored(Option<OffsetDateTime>);

impl Stored {
    pub fn new(at: OffsetDateTime) -> Self {
        Self(in_range(at))
    }

    /// The instant, when it can be rendered.
    pub fn get(self) -> Option<OffsetDateTime> {
        self.0
    }
}

impl From<OffsetDateTime> for Stored {
    fn from(at: OffsetDateTime) -> Self {
        Self::new(at)
    }
}

impl Serialize for Stored {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.and_then(render) {
            Some(text) => s.serialize_str(&text),
            None => s.serialize_none(),
        }
    }
}

#[cfg(feature = "db")]
mod postgres {
    //! `Stored` decodes `timestamptz` itself: sqlx's `OffsetDateTime` adds the stored
    //! microseconds to 2000-01-01 unchecked, which panics for `infinity` and beyond
    //! year 9999.

    use sqlx::postgres::{PgTypeInfo, PgValueFormat, PgValueRef};
    use sqlx::{Decode, Postgres, Type};
    use time::{Duration, OffsetDateTime, PrimitiveDateTime};

    use super::Stored;

    const PG_EPOCH: OffsetDateTime = time::macros::datetime!(2000-01-01 0:00 UTC);

    impl Type<Postgres> for Stored {
        fn type_info() -> PgTypeInfo {
            <OffsetDateTime as Type<Postgres>>::type_info()
        }
    }

    impl<'r> Decode<'r, Postgres> for Stored {
        fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
            let at = match value.format() {
                PgValueFormat::Binary => {
                    let micros = <i64 as Decode<Postgres>>::decode(value)?;
                    PG_EPOCH.checked_add(Duration::microseconds(micros))
                }
                // sqlx's text parsing fails (it does not panic) on what it cannot read.
                PgValueFormat::Text => <PrimitiveDateTime as Decode<Postgres>>::decode(value)
                    .ok()
                    .map(PrimitiveDateTime::assume_utc),
            };
            let stored = at.map_or(Stored(None), Stored::new);
            if stored.0.is_none() {
                tracing::warn!(
                    "a stored timestamp is outside 0000-01-01..9999-12-31 UTC (written around the API); it is not rendered"
                );
            }
            Ok(stored)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_timestamps_in_range_are_read_as_utc() {
        assert_eq!(
            parse("2026-11-20T10:00:00+02:00").unwrap(),
            datetime!(2026-11-20 08:00 UTC)
        );
        assert_eq!(parse("0000-01-01T00:00:00Z").unwrap(), EARLIEST);
        assert_eq!(parse("0000-01-01T01:00:00+01:00").unwrap(), EARLIEST);
        assert_eq!(parse("9999-12-31T23:59:59.999999Z").unwrap(), LATEST);
        assert_eq!(parse("9999-12-31T22:59:59.999999-01:00").unwrap(), LATEST);
    }

    #[test]
    fn an_offset_that_carries_the_instant_out_of_range_is_refused_without_a_panic() {
        for raw in [
            // The issue's cases: the local time parses, the instant is in year -1 / 10000.
            "0000-01-01T00:00:00+01:00",
            "0000-01-01T00:00:00+23:59",
            "9999-12-31T23:59:59-23:59",
            "9999-12-31T23:00:00-01:00",
            // Finer than PostgreSQL keeps, past the last microsecond of 9999.
            "9999-12-31T23:59:59.9999999Z",
        ] {
            assert_eq!(parse(raw), Err(RANGE), "{raw}");
        }
    }

    #[test]
    fn what_is_not_rfc3339_is_named_as_such() {
        for raw in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-20",
            "10000-01-01T00:00:00Z",
            "-0001-01-01T00:00:00Z",
            "2026-11-20T10:00:00+24:00",
        ] {
            assert_eq!(parse(raw), Err("must be an RFC 3339 timestamp"), "{raw}");
        }
    }

    #[test]
    fn a_400_names_its_field() {
        let err = parse_field("captured_at", "9999-12-31T23:59:59-23:59").unwrap_err();
        assert_eq!((err.status(), err.code()), (400, "invalid_request"));
        assert!(
            err.to_string().starts_with("captured_at: must be between"),
            "{err}"
        );
    }

    #[test]
    fn stored_instants_render_as_rfc3339_or_null_never_failing() {
        let render_json = |s: Stored| serde_json::to_string(&s).unwrap();
        assert_eq!(
            render_json(Stored::new(datetime!(2026-11-20 8:00 UTC))),
            r#""2026-11-20T08:00:00Z""#
        );
        assert_eq!(
            render_json(Stored::new(EARLIEST)),
            r#""0000-01-01T00:00:00Z""#
        );
        assert_eq!(
            render_json(Stored::new(datetime!(-0001-12-31 23:00 UTC))),
            "null"
        );
        assert_eq!(
            render_json(Stored::new(datetime!(-9999-01-01 0:00 UTC))),
            "null"
        );
        let max_local = datetime!(9999-12-31 23:59:59 -23:59);
        assert_eq!(render_json(Stored::new(max_local)), "null");
        assert_eq!(render(max_local), None);
    }
}
