//! The `Idempotency-Key` request header of the writing routes (the IETF httpapi draft's
//! header, the pattern of Lambda Powertools' idempotency): a client that did not get the
//! answer to a `POST` (a timeout, a 5xx after the write committed) sends it again with the
//! same key and gets the same resource, never a second one.
//!
//! The key names the resource: its id is a name-based UUID (v5) of the caller, the route's
//! scope and the key, so the write is an insert that a repeat finds already done (`ON
//! CONFLICT (id) DO NOTHING`), with no table of keys to keep or expire. A repeat with a
//! different body is a 409 (`idempotency_key_reused`); without the header a route writes
//! a new resource as before.

use uuid::Uuid;

use crate::ApiError;

/// The header, as API Gateway's payload 2.0 hands it over (names lower-cased).
pub const HEADER: &str = "idempotency-key";

/// The most characters a key may have (a UUID is 36; room for the client's own scheme).
pub const MAX_CHARS: usize = 255;

/// The namespace of every id derived from a key (a fixed, random UUID of encache's).
const NAMESPACE: Uuid = Uuid::from_u128(0x6f1e_2c4a_93d7_4b8e_a5c1_0d2f_7e9b_3a64);

/// A valid key: 1 to [`MAX_CHARS`] of `A-Z a-z 0-9 - _ . : ~ + / =`. No comma or space:
/// API Gateway joins a repeated header with commas, and a repeated key is ambiguous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The request's key, if it sent one; a malformed one is a 400 naming the header.
    pub fn from_request(
        req: &aws_lambda_events::apigw::ApiGatewayV2httpRequest,
    ) -> Result<Option<Self>, ApiError> {
        match req.headers.get(HEADER) {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .ok()
                .and_then(Self::parse)
                .map(Some)
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        "Idempotency-Key",
                        format!(
                            "must be one value of 1 to {MAX_CHARS} characters from A-Z a-z 0-9 - _ . : ~ + / ="
                        ),
                    )
                }),
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        let ok = (1..=MAX_CHARS).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:~+/=".contains(&b));
        ok.then(|| Self(raw.to_owned()))
    }

    /// The id of the resource this key names, for `caller` (the token's `sub`) and
    /// `scope` (the route, and the parent resource where there is one). Different
    /// callers, routes or parents never share an id.
    pub fn resource_id(&self, caller: &str, scope: &[&str]) -> Uuid {
        // Length-prefixed parts: no two different (caller, scope, key) give one name.
        let mut name = Vec::new();
        for part in std::iter::once(caller)
            .chain(scope.iter().copied())
            .chain([self.0.as_str()])
        {
            name.extend_from_slice(&(part.len() as u64).to_be_bytes());
            name.extend_from_slice(part.as_bytes());
        }
        Uuid::new_v5(&NAMESPACE, &name)
    }

    /// The 409 of a key sent again with a different request.
    pub fn reused() -> ApiError {
        ApiError::Conflict {
            code: "idempotency_key_reused".into(),
            message: "Idempotency-Key: already used for a different request; send a new key for a new one".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_plain_token() {
        assert!(IdempotencyKey::parse("6f1e2c4a-93d7-4b8e-a5c1-0d2f7e9b3a64").is_some());
        assert!(IdempotencyKey::parse("client:42/retry=1~x+y_z.w").is_some());
        let long = "k".repeat(MAX_CHARS);
        assert!(IdempotencyKey::parse(&long).is_some());
        for bad in ["", "a,b", "a b", "ключ", "a\u{0}", &format!("{long}k")] {
            assert!(IdempotencyKey::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn one_key_names_one_resource_per_caller_and_scope() {
        let k = IdempotencyKey::parse("abc").unwrap();
        let id = k.resource_id("sub-1", &["uploads"]);
        assert_eq!(id, k.resource_id("sub-1", &["uploads"]));
        assert_ne!(id, k.resource_id("sub-2", &["uploads"]));
        assert_ne!(id, k.resource_id("sub-1", &["conversations"]));
        assert_ne!(
            id,
            IdempotencyKey::parse("abd")
                .unwrap()
                .resource_id("sub-1", &["uploads"])
        );
        // Part boundaries count: ("ab", "c") is not ("a", "bc").
        assert_ne!(
            IdempotencyKey::parse("c").unwrap().resource_id("ab", &[]),
            IdempotencyKey::parse("bc").unwrap().resource_id("a", &[])
        );
    }
}
