//! Object keys and S3 event sequencers.

use std::cmp::Ordering;

use uuid::Uuid;

/// The one place object keys are made: server-chosen ids only, under the owner's prefix,
/// so no client string ever becomes a path segment.
pub fn object_key(user_id: Uuid, memory_id: Uuid) -> String {
    format!("users/{user_id}/memories/{memory_id}")
}

/// S3 event keys are URL-encoded with `+` for spaces: replace `+` by a space, then
/// percent-decode. `None` when the result is not UTF-8 (no memory can have that key).
pub fn decode_event_key(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|k| k.into_owned())
}

/// S3's per-key event sequencer: a hex string whose larger value is the later event.
/// Stored upper-case in `memories.last_sequencer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequencer(String);

impl Sequencer {
    /// `None` for a missing or non-hex value: such an event cannot be ordered.
    pub fn parse(raw: Option<&str>) -> Option<Self> {
        let raw = raw?.trim();
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(Self(raw.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares after left-padding the shorter value with zeros (so as hex numbers).
    /// The SQL transition in `store.rs` does the same with `lpad`.
    pub fn compare(&self, other: &Self) -> Ordering {
        compare_hex(&self.0, &other.0)
    }
}

fn compare_hex(a: &str, b: &str) -> Ordering {
    let width = a.len().max(b.len());
    let pad = |s: &str| format!("{}{}", "0".repeat(width - s.len()), s.to_ascii_uppercase());
    pad(a).cmp(&pad(b))
}

/// Is `event` later than the stored sequencer? With nothing stored, any event is.
pub fn is_newer(event: Option<&Sequencer>, stored: Option<&str>) -> bool {
    match (event, stored) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(e), Some(s)) => compare_hex(e.as_str(), s) == Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sit_under_the_owners_prefix() {
        let user = Uuid::parse_str("6f1c2a3e-0000-4000-8000-000000000001").unwrap();
        let memory = Uuid::parse_str("0b7e4c11-0000-4000-8000-000000000002").unwrap();
        assert_eq!(
            object_key(user, memory),
            "users/6f1c2a3e-0000-4000-8000-000000000001/memories/0b7e4c11-0000-4000-8000-000000000002"
        );
    }

    #[test]
    fn event_keys_turn_plus_into_space_before_percent_decoding() {
        assert_eq!(
            decode_event_key("Happy+Face%2B1.jpg").as_deref(),
            Some("Happy Face+1.jpg")
        );
        assert_eq!(
            decode_event_key("caf%C3%A9%20%E2%9C%93").as_deref(),
            Some("café ✓")
        );
        assert_eq!(decode_event_key("bad%FF"), None);
    }

    #[test]
    fn sequencers_compare_as_hex_numbers_after_left_padding() {
        let a = Sequencer::parse(Some("0055AED6DCD90281E5")).unwrap();
        let b = Sequencer::parse(Some("0055aed6dcd90281e6")).unwrap();
        assert_eq!(a.compare(&b), Ordering::Less);
        // A shorter value is padded with leading zeros, so FF < 100.
        let short = Sequencer::parse(Some("FF")).unwrap();
        let long = Sequencer::parse(Some("100")).unwrap();
        assert_eq!(short.compare(&long), Ordering::Less);
        assert_eq!(
            Sequencer::parse(Some("00FF")).unwrap().compare(&short),
            Ordering::Equal
        );
    }

    #[test]
    fn missing_or_non_hex_sequencers_are_unordered() {
        assert_eq!(Sequencer::parse(None), None);
        assert_eq!(Sequencer::parse(Some("Happy Sequencer")), None);
        let s = Sequencer::parse(Some("0A")).unwrap();
        assert!(is_newer(Some(&s), None));
        assert!(is_newer(None, None));
        assert!(!is_newer(None, Some("0A")));
        assert!(!is_newer(Some(&s), Some("0A")));
        assert!(is_newer(Some(&s), Some("09")));
    }
}
