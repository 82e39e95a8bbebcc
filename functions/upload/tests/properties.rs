//! Properties of the object key an S3 event carries. S3 writes it URL-encoded (`+` for a
//! space, `%XX` for the rest); the completion handler decodes it and finds the memory by
//! the whole key, `users/<user id>/memories/<memory id>`, so the decoding must give back
//! exactly the key the API stored, and no key of any shape may panic it.

use aws_lambda_events::s3::S3Event;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use encache_shared::db::Database;
use encache_testkit::{refused_pool, sample_event};
use encache_upload::complete::{Outcome, process_record};
use encache_upload::keys::{decode_event_key, object_key};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use uuid::Uuid;

/// Each case is a string scan of microseconds. Failures are not persisted to a file: a
/// case found is kept as an example test beside the code it broke.
fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// How S3 may write a key into an event: as HTML forms encode (`+` for a space), every
/// other byte but letters, digits and `-_.*` as `%XX`, in either case of hex, `/` escaped
/// or not.
#[derive(Debug, Clone, Copy)]
struct Encoding {
    lower_hex: bool,
    keep_slash: bool,
}

fn encoding() -> impl Strategy<Value = Encoding> {
    (any::<bool>(), any::<bool>()).prop_map(|(lower_hex, keep_slash)| Encoding {
        lower_hex,
        keep_slash,
    })
}

/// Written here from the rule, not with the decoder's library, so the two can disagree.
fn s3_encode(key: &str, how: Encoding) -> String {
    let mut out = String::new();
    for &b in key.as_bytes() {
        match b {
            b' ' => out.push('+'),
            b'/' if how.keep_slash => out.push('/'),
            b if b.is_ascii_alphanumeric() || b"-_.*".contains(&b) => out.push(char::from(b)),
            b if how.lower_hex => out.push_str(&format!("%{b:02x}")),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Text of `len` characters drawn from `chars` (cheaper to generate than a regex).
fn text_of(
    chars: impl Strategy<Value = char>,
    len: std::ops::Range<usize>,
) -> impl Strategy<Value = String> {
    prop::collection::vec(chars, len).prop_map(|c| c.into_iter().collect())
}

/// Any object key S3 holds (UTF-8, up to 1,024 bytes), with the characters its encoding
/// treats specially sprinkled in: space, `+`, `%`, `/`.
fn any_key() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![' ', '+', '%', '/', '2', 'B', '0', 'é', '✓']);
    (
        prop::collection::vec(any::<char>(), 0..80),
        prop::collection::vec((any::<prop::sample::Index>(), special), 0..40),
    )
        .prop_map(|(mut chars, inserts)| {
            for (at, c) in inserts {
                chars.insert(at.index(chars.len() + 1), c);
            }
            chars.into_iter().collect()
        })
}

proptest! {
    #![proptest_config(cases(5000))]

    #[test]
    fn a_memorys_object_key_decodes_from_its_event_to_the_key_the_api_stored(
        user in any::<u128>(),
        memory in any::<u128>(),
        how in encoding(),
    ) {
        let key = object_key(Uuid::from_u128(user), Uuid::from_u128(memory));
        prop_assert_eq!(decode_event_key(&s3_encode(&key, how)), Some(key));
    }

    #[test]
    fn any_object_key_round_trips_through_s3s_event_encoding(key in any_key(), how in encoding()) {
        let encoded = s3_encode(&key, how);
        prop_assert_eq!(decode_event_key(&encoded), Some(key), "{}", encoded);
    }

    #[test]
    fn no_event_key_panics_the_decoder_and_a_key_without_escapes_is_itself(
        raw in prop_oneof![
            text_of(any::<char>(), 0..120),
            text_of(prop::sample::select(vec!['%', '+', 'f', 'F', 'c', '3', '0', '8', 'z', ' ']), 0..40),
        ],
    ) {
        let decoded = decode_event_key(&raw);
        if !raw.contains(['%', '+']) {
            prop_assert_eq!(decoded.as_deref(), Some(raw.as_str()));
        }
        // What decodes is a key: written back the way S3 does, it decodes to itself.
        if let Some(key) = decoded {
            let how = Encoding { lower_hex: false, keep_slash: true };
            prop_assert_eq!(decode_event_key(&s3_encode(&key, how)), Some(key));
        }
    }
}

/// Through the completion handler with the real event shape: every record is reported
/// under its decoded key (or as a permanent failure when the key is not UTF-8), whatever
/// the key, and a record for another bucket is ignored before any database or S3 call.
#[test]
fn the_completion_handler_reports_any_record_under_its_decoded_key() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _in_runtime = rt.enter();
    // Never reached: both would fail the case if they were.
    let db = Database::from(refused_pool());
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build(),
    );
    let template: S3Event = sample_event("s3-object-created.json");
    let raw_key = prop_oneof![
        (any_key(), encoding()).prop_map(|(key, how)| s3_encode(&key, how)),
        text_of(any::<char>(), 0..60),
        // Escapes of bytes that are no UTF-8 (a lone continuation byte, a cut sequence).
        prop::collection::vec(
            prop::sample::select(vec!["%80", "%C3", "%E2%9C", "%FF", "a", "+"]),
            1..6
        )
        .prop_map(|parts| parts.concat()),
    ];

    let mut runner = TestRunner::new(cases(1000));
    let result = runner.run(&raw_key, |raw| {
        let mut record = template.records[0].clone();
        record.s3.object.key = Some(raw.clone());
        let result = rt.block_on(process_record(&record, &db, &s3, "another-bucket"));
        match decode_event_key(&raw) {
            Some(key) => {
                prop_assert_eq!(result.key, Some(key));
                prop_assert!(
                    matches!(result.outcome, Outcome::Ignored { .. }),
                    "{:?}",
                    result.outcome
                );
            }
            None => {
                prop_assert_eq!(result.key, None);
                prop_assert!(
                    matches!(result.outcome, Outcome::Permanent { .. }),
                    "{:?}",
                    result.outcome
                );
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
