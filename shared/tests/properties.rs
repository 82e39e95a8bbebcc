//! Properties of the two things every client-facing function parses from outside: signed
//! feed cursors (`pagination`) and timestamps (`timestamp`). The unit tests beside the
//! code show the cases someone thought of; these hold for thousands of generated ones.
//! A case proptest finds is kept as a named example test next to the code it broke.

use std::collections::HashMap;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use encache_shared::http::json_body;
use encache_shared::pagination::{CursorScope, CursorSigner, Keyset};
use encache_shared::timestamp::{self, EARLIEST, LATEST, RANGE, Stored};
use encache_shared::{ApiError, Secret};
use proptest::prelude::*;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};
use uuid::Uuid;

/// Every case is a pure function call of microseconds, so thousands fit in a second.
/// Failures are not persisted to a file: a case found is kept as an example test.
fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const NOT_RFC3339: &str = "must be an RFC 3339 timestamp";

/// Text of `len` characters drawn from `chars`. (Cheaper to generate than a regex strategy
/// of the same shape, which keeps thousands of cases within a second or two.)
fn text_of(
    chars: impl Strategy<Value = char> + Clone,
    len: std::ops::Range<usize>,
) -> impl Strategy<Value = String> + Clone {
    prop::collection::vec(chars, len).prop_map(|c| c.into_iter().collect())
}

/// One of the characters of `set`.
fn one_of(set: &str) -> impl Strategy<Value = char> + Clone + use<> {
    prop::sample::select(set.chars().collect::<Vec<_>>())
}

/// Any text: every Unicode scalar value, controls and NUL included.
fn any_text(len: std::ops::Range<usize>) -> impl Strategy<Value = String> + Clone {
    text_of(any::<char>(), len)
}

// ---------------------------------------------------------------------------------------
// Cursors
// ---------------------------------------------------------------------------------------

/// A signing key as configuration holds one: printable, at least the minimum length, and
/// past SHA-256's block size at times (HMAC hashes such keys first). Keys differing only
/// in trailing NUL bytes are one key to HMAC; no configured key has them.
fn key() -> impl Strategy<Value = String> {
    (any::<u128>(), text_of(one_of("~k!z"), 0..64)).prop_map(|(n, tail)| format!("{n:032x}{tail}"))
}

fn signer(key: &str) -> CursorSigner {
    CursorSigner::new(&Secret::new(key.to_owned())).expect("keys are long enough")
}

/// The parts a cursor is bound to. A small alphabet makes near-identical scopes common
/// ("a"+"bc" against "ab"+"c"), which is where a serialization would collide.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Scope {
    route: String,
    caller: String,
    filters: Vec<(String, String)>,
}

impl Scope {
    fn build(&self) -> CursorScope {
        self.filters.iter().fold(
            CursorScope::new(&self.route, &self.caller),
            |scope, (name, value)| scope.filter(name, value),
        )
    }
}

fn scope_of(part: impl Strategy<Value = String> + Clone) -> impl Strategy<Value = Scope> {
    (
        part.clone(),
        part.clone(),
        prop::collection::vec((part.clone(), part), 0..3),
    )
        .prop_map(|(route, caller, filters)| Scope {
            route,
            caller,
            filters,
        })
}

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        scope_of(text_of(one_of("ab"), 0..4)),
        scope_of(any_text(0..24)),
    ]
}

/// Any instant `time` holds, to the microsecond (what PostgreSQL keeps), and any id;
/// the walk's starting point too.
fn position() -> impl Strategy<Value = Keyset> {
    let micros = |at: OffsetDateTime| (at.unix_timestamp_nanos() / 1_000) as i64;
    let first = micros(OffsetDateTime::new_utc(Date::MIN, Time::MIDNIGHT));
    let last = micros(OffsetDateTime::new_utc(Date::MAX, Time::MAX));
    prop_oneof![
        1 => Just(Keyset::TOP),
        1 => any::<u128>().prop_map(|id| Keyset { time: EARLIEST, id: Uuid::from_u128(id) }),
        20 => (first..=last, any::<u128>()).prop_map(|(us, id)| Keyset {
            time: OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
                .expect("within time's range"),
            id: Uuid::from_u128(id),
        }),
    ]
}

/// A minted cursor, with what it was minted for.
fn minted() -> impl Strategy<Value = (String, Scope, Keyset, String)> {
    (key(), scope(), position()).prop_map(|(key, scope, at)| {
        let cursor = signer(&key).encode(&scope.build(), at);
        (key, scope, at, cursor)
    })
}

fn assert_invalid_cursor(result: Result<Keyset, ApiError>) -> Result<(), TestCaseError> {
    match result {
        Err(e) => {
            prop_assert_eq!((e.status(), e.code()), (400, "invalid_cursor"));
            prop_assert_eq!(e.to_string(), "cursor is invalid or expired");
            Ok(())
        }
        Ok(at) => Err(TestCaseError::fail(format!("accepted as {at:?}"))),
    }
}

const BASE64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

proptest! {
    #![proptest_config(cases(4000))]

    #[test]
    fn any_position_round_trips_through_its_cursor((key, scope, at, cursor) in minted()) {
        prop_assert!(cursor.chars().all(|c| BASE64URL.contains(c)), "{}", cursor);
        prop_assert_eq!(signer(&key).decode(&scope.build(), &cursor).unwrap(), at);
    }

    #[test]
    fn any_string_that_was_not_minted_is_an_invalid_cursor_not_a_panic(
        key in key(),
        scope in scope(),
        raw in prop_oneof![
            any_text(0..100),
            text_of(one_of(BASE64URL), 0..120),
            // Exactly a cursor's length (57 bytes, 76 characters), and around it.
            prop::collection::vec(any::<u8>(), 55..60).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
            prop::collection::vec(any::<u8>(), 0..100).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
            prop::collection::vec(any::<u8>(), 0..100).prop_map(|b| STANDARD.encode(b)),
        ],
    ) {
        assert_invalid_cursor(signer(&key).decode(&scope.build(), &raw))?;
    }
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn a_truncated_or_extended_cursor_is_rejected(
        (key, scope, _, cursor) in minted(),
        cut in any::<prop::sample::Index>(),
        extra in text_of(one_of(BASE64URL), 1..9),
    ) {
        let signer = signer(&key);
        let scope = scope.build();
        assert_invalid_cursor(signer.decode(&scope, &cursor[..cut.index(cursor.len())]))?;
        assert_invalid_cursor(signer.decode(&scope, &format!("{cursor}{extra}")))?;
        assert_invalid_cursor(signer.decode(&scope, &format!("{extra}{cursor}")))?;
    }

    #[test]
    fn a_cursor_with_any_bit_or_character_changed_is_rejected(
        (key, scope, _, cursor) in minted(),
        at in any::<prop::sample::Index>(),
        mask in 1u8..,
        replacement in any::<char>(),
    ) {
        let signer = signer(&key);
        let scope = scope.build();
        let mut raw = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        let i = at.index(raw.len());
        raw[i] ^= mask;
        assert_invalid_cursor(signer.decode(&scope, &URL_SAFE_NO_PAD.encode(&raw)))?;

        let i = at.index(cursor.len());
        prop_assume!(!cursor[i..].starts_with(replacement));
        let mut text = cursor.clone();
        text.replace_range(i..=i, replacement.encode_utf8(&mut [0; 4]));
        assert_invalid_cursor(signer.decode(&scope, &text))?;
    }

    #[test]
    fn a_cursor_signed_with_another_key_is_rejected(
        (key, scope, _, cursor) in minted(),
        other in key(),
    ) {
        prop_assume!(other != key);
        assert_invalid_cursor(signer(&other).decode(&scope.build(), &cursor))?;
    }

    #[test]
    fn a_cursor_fits_only_the_route_caller_and_filters_it_was_minted_for(
        (key, minted_for, _, cursor) in minted(),
        other in scope(),
    ) {
        prop_assume!(other != minted_for);
        // Different parts never serialize alike (each is length-prefixed) ...
        prop_assert_ne!(other.build(), minted_for.build());
        // ... so the tag does not verify.
        assert_invalid_cursor(signer(&key).decode(&other.build(), &cursor))?;
    }
}

// ---------------------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------------------

/// Any instant the API accepts, to the nanosecond, with the edges themselves often.
fn instant_in_range() -> impl Strategy<Value = OffsetDateTime> {
    let (first, last) = (
        EARLIEST.unix_timestamp_nanos(),
        LATEST.unix_timestamp_nanos(),
    );
    let day = 86_400_000_000_000i128;
    prop_oneof![
        1 => Just(first),
        1 => Just(last),
        2 => (0..=day).prop_map(move |n| first + n),
        2 => (0..=day).prop_map(move |n| last - n),
        20 => first..=last,
    ]
    .prop_map(|n| OffsetDateTime::from_unix_timestamp_nanos(n).expect("within time's range"))
}

/// Any offset RFC 3339 can write: whole minutes, under a day either way.
fn offset() -> impl Strategy<Value = UtcOffset> {
    prop_oneof![
        2 => Just(UtcOffset::UTC),
        1 => Just(UtcOffset::from_hms(23, 59, 0).unwrap()),
        1 => Just(UtcOffset::from_hms(-23, -59, 0).unwrap()),
        8 => (-1439i32..=1439).prop_map(|m| UtcOffset::from_whole_seconds(m * 60).unwrap()),
    ]
}

/// How a client may spell the same instant: `T`, `t` or a space between date and time,
/// `Z`, `z` or `+00:00` for UTC, and as many fraction digits as it likes.
#[derive(Debug, Clone)]
struct Spelling {
    separator: char,
    zulu: &'static str,
    /// Fraction digits beyond the nanoseconds: trailing zeros.
    extra_zeros: usize,
}

fn spelling() -> impl Strategy<Value = Spelling> {
    (
        prop::sample::select(vec!['T', 't', ' ']),
        prop::sample::select(vec!["Z", "z", "+00:00", "-00:00"]),
        0usize..4,
    )
        .prop_map(|(separator, zulu, extra_zeros)| Spelling {
            separator,
            zulu,
            extra_zeros,
        })
}

/// `local` written as RFC 3339, from its own fields (not `time`'s formatter, which is the
/// parser's twin).
fn write_rfc3339(local: OffsetDateTime, spelling: &Spelling) -> String {
    let mut fraction = format!("{:09}", local.nanosecond());
    while fraction.ends_with('0') {
        fraction.pop();
    }
    if !fraction.is_empty() {
        fraction.push_str(&"0".repeat(spelling.extra_zeros));
        fraction.insert(0, '.');
    }
    let offset = local.offset();
    let zone = if offset.is_utc() {
        spelling.zulu.to_owned()
    } else {
        let sign = if offset.is_negative() { '-' } else { '+' };
        let minutes = offset.whole_minutes().unsigned_abs();
        format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
    };
    format!(
        "{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}{fraction}{zone}",
        local.year(),
        u8::from(local.month()),
        local.day(),
        spelling.separator,
        local.hour(),
        local.minute(),
        local.second(),
    )
}

/// The parts of a date-time text, each within what its digits can say, so the date
/// (Feb 30), the leap second (`:60`) and the instant's range are what decide.
#[derive(Debug, Clone)]
struct Parts {
    year: i32,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    /// Up to 12 digits after the point; none means no fraction.
    fraction: String,
    /// `None`: `Z`.
    offset: Option<(bool, u8, u8)>,
}

fn parts() -> impl Strategy<Value = Parts> {
    let edge_year = prop_oneof![3 => 0..=9999i32, 1 => Just(0), 1 => Just(9999)];
    let month = prop_oneof![3 => 1..=12u8, 1 => Just(1), 1 => Just(12)];
    let day = prop_oneof![3 => 1..=31u8, 1 => Just(1), 1 => 28..=31u8];
    let hour = prop_oneof![3 => 0..=23u8, 1 => Just(0), 1 => Just(23)];
    let minute = prop_oneof![3 => 0..=59u8, 1 => Just(0), 1 => Just(59)];
    let second = prop_oneof![6 => 0..=59u8, 1 => Just(59), 1 => Just(60)];
    let fraction = prop_oneof![
        Just(String::new()),
        text_of(one_of("0123456789"), 1..13),
        (6usize..11).prop_map(|n| "9".repeat(n)),
        (1usize..10).prop_map(|n| "0".repeat(n)),
    ];
    let offset = prop::option::weighted(
        0.8,
        (
            any::<bool>(),
            prop_oneof![0..=23u8, Just(23)],
            prop_oneof![0..=59u8, Just(59)],
        ),
    );
    (
        edge_year,
        month,
        day,
        (hour, minute, second),
        fraction,
        offset,
    )
        .prop_map(
            |(year, month, day, (hour, minute, second), fraction, offset)| Parts {
                year,
                month,
                day,
                hour,
                minute,
                second,
                fraction,
                offset,
            },
        )
}

impl Parts {
    fn text(&self) -> String {
        let fraction = if self.fraction.is_empty() {
            String::new()
        } else {
            format!(".{}", self.fraction)
        };
        let zone = match self.offset {
            None => "Z".to_owned(),
            Some((negative, h, m)) => format!("{}{h:02}:{m:02}", if negative { '-' } else { '+' }),
        };
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}{zone}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// What the text names, worked out by hand: the instant in UTC, or why it is refused.
    fn expected(&self) -> Result<OffsetDateTime, &'static str> {
        let month = Month::try_from(self.month).map_err(|_| NOT_RFC3339)?;
        let date = Date::from_calendar_date(self.year, month, self.day).map_err(|_| NOT_RFC3339)?;
        // Digits past the ninth are below a nanosecond: dropped.
        let nanos: u32 = format!("{:0<9}", self.fraction)[..9].parse().unwrap();
        // A leap second stands for the last nanosecond before it, and only where one can
        // be: the last second of a month, in UTC.
        let (second, nanos) = if self.second == 60 {
            (59, 999_999_999)
        } else {
            (self.second, nanos)
        };
        let local = PrimitiveDateTime::new(
            date,
            Time::from_hms_nano(self.hour, self.minute, second, nanos).unwrap(),
        );
        let offset_seconds = self.offset.map_or(0, |(negative, h, m)| {
            let s = i128::from(h) * 3600 + i128::from(m) * 60;
            if negative { -s } else { s }
        });
        let unix = local.assume_utc().unix_timestamp_nanos() - offset_seconds * 1_000_000_000;
        if self.second == 60 {
            let utc = OffsetDateTime::from_unix_timestamp_nanos(unix).map_err(|_| NOT_RFC3339)?;
            let last_second_of_month = (utc.hour(), utc.minute(), utc.second()) == (23, 59, 59)
                && utc.day() == utc.month().length(utc.year());
            if !last_second_of_month {
                return Err(NOT_RFC3339);
            }
        }
        if !(EARLIEST.unix_timestamp_nanos()..=LATEST.unix_timestamp_nanos()).contains(&unix) {
            return Err(RANGE);
        }
        Ok(OffsetDateTime::from_unix_timestamp_nanos(unix).unwrap())
    }
}

/// Near-RFC 3339 text: a valid one with a few characters replaced, cut or repeated, where
/// a parser's arithmetic (offsets, fractions, leap seconds) is exercised hardest.
fn mangled() -> impl Strategy<Value = String> {
    (
        parts(),
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                prop_oneof![one_of("0123456789+:.Zz -"), any::<char>()],
            ),
            0..4,
        ),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(parts, edits, cut)| {
            let mut chars: Vec<char> = parts.text().chars().collect();
            for (at, with) in edits {
                let i = at.index(chars.len());
                chars[i] = with;
            }
            let keep = chars.len() - cut.index(chars.len() / 4 + 1);
            chars[..keep].iter().collect()
        })
}

/// A body with an optional timestamp field, as upload declares `captured_at`.
#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "only how it parses is under test")]
struct Declaration {
    #[serde(default, deserialize_with = "timestamp::optional")]
    captured_at: Option<OffsetDateTime>,
}

fn request(query: Option<(&str, &str)>, body: Option<String>) -> ApiGatewayV2httpRequest {
    let mut req = ApiGatewayV2httpRequest::default();
    if let Some((name, value)) = query {
        req.query_string_parameters = HashMap::from([(name.to_owned(), value.to_owned())]).into();
    }
    req.body = body;
    req
}

fn assert_names_field(err: ApiError, field: &str, problem: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!((err.status(), err.code()), (400, "invalid_request"));
    prop_assert_eq!(err.to_string(), format!("{field}: {problem}"));
    Ok(())
}

proptest! {
    #![proptest_config(cases(4000))]

    #[test]
    fn any_instant_in_range_round_trips_through_its_rfc3339_text(
        at in instant_in_range(),
        offset in offset(),
        spelling in spelling(),
    ) {
        // As the client's clock would write it: the same instant at its own offset (a
        // local date outside 0000..=9999 has no RFC 3339 text, so UTC then).
        let local = at
            .checked_to_offset(offset)
            .filter(|l| (0..=9999).contains(&l.year()))
            .unwrap_or(at);
        let text = write_rfc3339(local, &spelling);

        let parsed = timestamp::parse(&text);

        prop_assert_eq!(parsed, Ok(at), "{}", text);
        prop_assert!(parsed.unwrap().offset().is_utc());
        let rendered = timestamp::render(at).expect("an instant in range renders");
        prop_assert_eq!(timestamp::parse(&rendered), Ok(at), "{}", rendered);
        prop_assert_eq!(OffsetDateTime::parse(&rendered, &Rfc3339).unwrap(), at);
    }

    #[test]
    fn rfc3339_text_parses_to_the_instant_it_names_or_says_why_not(parts in parts()) {
        let text = parts.text();
        prop_assert_eq!(timestamp::parse(&text), parts.expected(), "{}", text);
    }

    #[test]
    fn no_string_panics_the_timestamp_parser_and_what_it_accepts_is_in_range_in_utc(
        raw in prop_oneof![any_text(0..40), text_of(one_of("0123456789T:.+Zz-"), 0..40), mangled()],
    ) {
        match timestamp::parse(&raw) {
            Ok(at) => {
                prop_assert!(at.offset().is_utc());
                prop_assert!((EARLIEST..=LATEST).contains(&at), "{} -> {}", raw, at);
            }
            Err(problem) => prop_assert!(problem == NOT_RFC3339 || problem == RANGE, "{}", problem),
        }
        // The same text as a field, a query parameter and a body field: a 400 at worst.
        let field = timestamp::parse_field("at", &raw);
        let query = timestamp::query(&request(Some(("since", &raw)), None), "since");
        let body = serde_json::to_string(&serde_json::json!({ "captured_at": raw })).unwrap();
        let body = json_body::<Declaration>(&request(None, Some(body)));
        for status in [
            field.err().map(|e| e.status()),
            query.err().map(|e| e.status()),
            body.err().map(|e| e.status()),
        ]
        .into_iter()
        .flatten()
        {
            prop_assert_eq!(status, 400);
        }
    }

    #[test]
    fn a_stored_instant_renders_as_its_rfc3339_text_or_as_null(
        nanos in OffsetDateTime::new_utc(Date::MIN, Time::MIDNIGHT).unix_timestamp_nanos()
            ..=OffsetDateTime::new_utc(Date::MAX, Time::MAX).unix_timestamp_nanos(),
        offset in offset(),
    ) {
        let utc = OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap();
        // Either way the instant is the same; the offset is only how it is held.
        let at = utc.checked_to_offset(offset).unwrap_or(utc);
        let json = serde_json::to_value(Stored::new(at)).unwrap();
        if (EARLIEST..=LATEST).contains(&utc) {
            let text = json.as_str().expect("in range: a string");
            prop_assert_eq!(timestamp::parse(text), Ok(utc));
            prop_assert_eq!(Stored::new(at).get(), Some(utc));
        } else {
            prop_assert_eq!(json, serde_json::Value::Null);
            prop_assert_eq!(Stored::new(at).get(), None);
        }
    }
}

/// An instant just outside the range that RFC 3339 can still write: a local time near an
/// end of year 0000..=9999 whose offset carries it past that end, or 9999-12-31 below a
/// microsecond after the last one.
fn out_of_range_text() -> impl Strategy<Value = String> {
    let before = (1..=1439i32, 0..86_400i32, 0..1_000_000_000u32).prop_filter_map(
        "the instant is before 0000-01-01T00:00:00Z",
        |(offset_minutes, local_seconds, nanos)| {
            let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).ok()?;
            let local = OffsetDateTime::new_in_offset(
                Date::from_calendar_date(0, Month::January, 1).ok()?,
                Time::from_hms_nano(0, 0, 0, nanos).ok()?,
                offset,
            ) + time::Duration::seconds(local_seconds.into());
            (local.unix_timestamp_nanos() < EARLIEST.unix_timestamp_nanos()).then_some(local)
        },
    );
    let after = (1..=1439i32, 0..86_400i32, 0..1_000_000_000u32).prop_filter_map(
        "the instant is after 9999-12-31T23:59:59.999999Z",
        |(offset_minutes, local_seconds, nanos)| {
            let offset = UtcOffset::from_whole_seconds(-offset_minutes * 60).ok()?;
            let local = OffsetDateTime::new_in_offset(
                Date::from_calendar_date(9999, Month::December, 31).ok()?,
                Time::from_hms_nano(23, 59, 59, nanos).ok()?,
                offset,
            ) - time::Duration::seconds(local_seconds.into());
            (local.unix_timestamp_nanos() > LATEST.unix_timestamp_nanos()).then_some(local)
        },
    );
    let last_microsecond = (1..=999u32).prop_map(|n| {
        OffsetDateTime::new_utc(
            Date::from_calendar_date(9999, Month::December, 31).unwrap(),
            Time::from_hms_nano(23, 59, 59, 999_999_000 + n).unwrap(),
        )
    });
    (prop_oneof![before, after, last_microsecond], spelling())
        .prop_map(|(local, spelling)| write_rfc3339(local, &spelling))
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn an_instant_out_of_range_is_a_400_naming_its_field(
        text in out_of_range_text(),
        field in text_of(one_of("abcdefghijklmnopqrstuvwxyz_"), 1..30),
    ) {
        prop_assert_eq!(timestamp::parse(&text), Err(RANGE), "{}", text);
        assert_names_field(timestamp::parse_field(&field, &text).unwrap_err(), &field, RANGE)?;
        let query = timestamp::query(&request(Some((&field, &text)), None), &field);
        assert_names_field(query.unwrap_err(), &field, RANGE)?;
        let body = serde_json::json!({ "captured_at": text }).to_string();
        let body = json_body::<Declaration>(&request(None, Some(body)));
        assert_names_field(body.unwrap_err(), "captured_at", RANGE)?;
    }
}
