//! API Gateway HTTP API (payload format 2.0) requests and responses.
//!
//! Handlers return `Result<T, ApiError>`; [`respond`] turns either side into the
//! response API Gateway expects, so no error path can escape as a Lambda failure (which
//! the gateway would turn into an opaque 500).

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use http::HeaderValue;
use http::header::CONTENT_TYPE;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The authenticated caller, as the gateway's JWT authorizer vouched for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Cognito's immutable user id: the only identity handlers trust.
    pub sub: String,
    pub email: Option<String>,
    /// The ID token's `email_verified` claim is `true`: Cognito proved the caller owns
    /// `email`. False when absent (an access token) or anything else.
    pub email_verified: bool,
    pub username: Option<String>,
    pub groups: Vec<String>,
}

impl Caller {
    /// Reads `requestContext.authorizer.jwt.claims`. Every claim arrives as a string;
    /// arrays arrive as `"[a b]"`.
    pub fn from_request(req: &ApiGatewayV2httpRequest) -> Result<Self, ApiError> {
        let claims = req
            .request_context
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| &jwt.claims)
            .ok_or_else(|| ApiError::Unauthorized("Unauthorized".into()))?;
        let sub = claims
            .get("sub")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::Unauthorized("Unauthorized".into()))?
            .to_owned();
        Ok(Self {
            sub,
            email: claims.get("email").cloned().filter(|e| !e.is_empty()),
            email_verified: claims
                .get("email_verified")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            username: claims
                .get("cognito:username")
                .or_else(|| claims.get("username"))
                .cloned(),
            groups: claims
                .get("cognito:groups")
                .map(|g| parse_claim_array(g))
                .unwrap_or_default(),
        })
    }
}

/// `"[admin beta]"` → `["admin", "beta"]`; a bare value is a one-element list.
pub fn parse_claim_array(raw: &str) -> Vec<String> {
    let inner = raw
        .trim()
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(raw);
    inner.split_whitespace().map(str::to_owned).collect()
}

/// The gateway's request id, falling back to none.
pub fn request_id(req: &ApiGatewayV2httpRequest) -> Option<&str> {
    req.request_context.request_id.as_deref()
}

pub fn path_param<'a>(req: &'a ApiGatewayV2httpRequest, name: &str) -> Result<&'a str, ApiError> {
    req.path_parameters
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::invalid_field(name, "is required in the path"))
}

/// A path parameter that must be a UUID: anything else is a 400, never a lookup.
pub fn path_uuid(req: &ApiGatewayV2httpRequest, name: &str) -> Result<uuid::Uuid, ApiError> {
    let raw = path_param(req, name)?;
    uuid::Uuid::parse_str(raw).map_err(|_| ApiError::invalid_field(name, "is not a valid id"))
}

/// A query parameter exactly as API Gateway sent it; blank counts as absent.
///
/// Payload 2.0 joins a repeated parameter's values with commas (`limit=5&limit=7` arrives
/// as `"5,7"`), and `aws_lambda_events` splits every value on commas again. Reading only
/// the first part would take `5` from both `limit=5&limit=7` and `limit=5,7`, which AWS
/// hands over as one malformed value: the parts are joined back, so it fails validation.
pub fn query_param(req: &ApiGatewayV2httpRequest, name: &str) -> Option<String> {
    req.query_string_parameters
        .all(name)
        .map(|parts| parts.join(","))
        .filter(|v| !v.is_empty())
}

/// The body as bytes, decoding base64 when the gateway says so.
pub fn body_bytes(req: &ApiGatewayV2httpRequest) -> Result<Vec<u8>, ApiError> {
    let Some(body) = req.body.as_deref() else {
        return Ok(Vec::new());
    };
    if req.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| ApiError::bad_request("invalid_body", "body is not valid base64"))
    } else {
        Ok(body.as_bytes().to_vec())
    }
}

/// Parses a JSON body that must be exactly one JSON object of `T`'s shape.
///
/// Invalid JSON, or anything after the object (trailing data, a second object), is a 400
/// `invalid_json`. Valid JSON that is not an object (an array of the field values, which
/// serde would otherwise read into a struct) is a 400 `invalid_request`, as is a field of
/// the wrong type or a missing one, named. Enum fields take only their string form when
/// declared with [`string_enum`]. Unknown fields follow `T` (`deny_unknown_fields` or not).
pub fn json_body<T: DeserializeOwned>(req: &ApiGatewayV2httpRequest) -> Result<T, ApiError> {
    let bytes = body_bytes(req)?;
    // JSON's own whitespace: a form feed before the object is not JSON.
    let Some(&first) = bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    else {
        return Err(ApiError::bad_request(
            "invalid_json",
            "request body is required",
        ));
    };
    if first != b'{' {
        return Err(match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(other) => ApiError::bad_request(
                "invalid_request",
                format!(
                    "request body must be a JSON object, not {}",
                    json_kind(&other)
                ),
            ),
            Err(_) => not_json(),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            not_json()
        } else if path == "." {
            // serde's own words already name a missing field ("missing field `x`").
            ApiError::bad_request("invalid_request", strip_position(&inner.to_string()))
        } else {
            ApiError::invalid_field(&path, strip_position(&inner.to_string()))
        }
    })?;
    de.end().map_err(|_| {
        ApiError::bad_request(
            "invalid_json",
            "request body must be exactly one JSON object, with nothing after it",
        )
    })?;
    Ok(value)
}

fn not_json() -> ApiError {
    ApiError::bad_request("invalid_json", "request body is not valid JSON")
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Null => "null",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A body field holding a unit-only enum, taken only in its string form:
/// `#[serde(deserialize_with = "encache_shared::http::string_enum")]`. serde's derived
/// enums also accept `{"user": null}` for `"user"`, which is not the documented shape.
pub fn string_enum<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::Deserialize;
    use serde::de::IntoDeserializer;
    let name = String::deserialize(de)?;
    T::deserialize(IntoDeserializer::<D::Error>::into_deserializer(name))
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// A JSON response with the request id echoed back for support tickets.
pub fn json_response<T: Serialize>(
    status: u16,
    body: &T,
    request_id: Option<&str>,
) -> ApiGatewayV2httpResponse {
    let (status, text) = match serde_json::to_string(body) {
        Ok(text) => (status, text),
        Err(e) => {
            tracing::error!(error = %e, "response body did not serialize");
            (
                500,
                r#"{"status":500,"code":"internal_error","message":"internal error"}"#.to_owned(),
            )
        }
    };
    let mut resp = ApiGatewayV2httpResponse::default();
    resp.status_code = i64::from(status);
    resp.headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        resp.headers.insert(REQUEST_ID_HEADER, id);
    }
    resp.body = Some(Body::Text(text));
    resp
}

/// Runs one request and logs its one access line: the route, the status, the duration and
/// the caller's Cognito `sub` (never a token, a header or a body). Every HTTP function's
/// `handle` wraps its work in it; "slowest requests" and "a user's requests" in
/// docs/operations.md query these lines.
pub async fn logged<F>(req: &ApiGatewayV2httpRequest, handling: F) -> ApiGatewayV2httpResponse
where
    F: std::future::Future<Output = ApiGatewayV2httpResponse>,
{
    let started = std::time::Instant::now();
    let resp = handling.await;
    let user = req
        .request_context
        .authorizer
        .as_ref()
        .and_then(|a| a.jwt.as_ref())
        .and_then(|jwt| jwt.claims.get("sub"))
        .map(String::as_str)
        .unwrap_or("-");
    tracing::info!(
        route = req.route_key.as_deref().unwrap_or("-"),
        status = resp.status_code,
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        user_id = user,
        "request"
    );
    resp
}

/// Turns a handler's result into the gateway response, logging the error once.
pub fn respond<T: Serialize>(
    result: Result<(u16, T), ApiError>,
    request_id: Option<&str>,
) -> ApiGatewayV2httpResponse {
    match result {
        Ok((status, body)) => json_response(status, &body, request_id),
        Err(err) => error_response(&err, request_id),
    }
}

pub fn error_response(err: &ApiError, request_id: Option<&str>) -> ApiGatewayV2httpResponse {
    err.log();
    json_response(err.status(), &err.body(), request_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn request(json: serde_json::Value) -> ApiGatewayV2httpRequest {
        serde_json::from_value(json).unwrap()
    }

    fn with_claims(claims: serde_json::Value) -> ApiGatewayV2httpRequest {
        request(serde_json::json!({
            "version": "2.0",
            "routeKey": "GET /v1/me",
            "rawPath": "/v1/me",
            "requestContext": {
                "requestId": "req-1",
                "authorizer": {"jwt": {"claims": claims, "scopes": null}},
                "http": {"method": "GET", "path": "/v1/me", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"}
            },
            "isBase64Encoded": false
        }))
    }

    #[test]
    fn the_caller_is_read_from_string_claims_with_groups_as_a_bracketed_list() {
        let req = with_claims(serde_json::json!({
            "sub": "abc-123", "email": "a@b.c", "cognito:groups": "[admin beta]", "exp": "1787996002"
        }));
        let caller = Caller::from_request(&req).unwrap();
        assert_eq!(caller.sub, "abc-123");
        assert_eq!(caller.groups, vec!["admin", "beta"]);
        assert_eq!(caller.email.as_deref(), Some("a@b.c"));
        assert!(
            !caller.email_verified,
            "no email_verified claim: not verified"
        );
    }

    #[test]
    fn email_verified_is_true_only_for_the_true_claim() {
        for (claim, verified) in [
            ("true", true),
            ("True", true),
            ("false", false),
            ("", false),
            ("1", false),
        ] {
            let req = with_claims(
                serde_json::json!({"sub": "abc", "email": "a@b.c", "email_verified": claim}),
            );
            assert_eq!(
                Caller::from_request(&req).unwrap().email_verified,
                verified,
                "{claim:?}"
            );
        }
    }

    #[test]
    fn a_request_without_a_sub_claim_is_unauthorized() {
        let req = with_claims(serde_json::json!({"email": "a@b.c"}));
        assert_eq!(Caller::from_request(&req).unwrap_err().status(), 401);
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Upload {
        size_bytes: u64,
        content_type: String,
    }

    fn with_body(body: &str) -> ApiGatewayV2httpRequest {
        let mut req = with_claims(serde_json::json!({"sub": "s"}));
        req.body = Some(body.to_owned());
        req
    }

    #[test]
    fn invalid_json_is_a_400_invalid_json() {
        let err = json_body::<Upload>(&with_body("{not json")).unwrap_err();
        assert_eq!((err.status(), err.code()), (400, "invalid_json"));
    }

    #[test]
    fn a_wrong_typed_field_is_named() {
        let err = json_body::<Upload>(&with_body(
            r#"{"size_bytes": "big", "content_type": "image/png"}"#,
        ))
        .unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.to_string().starts_with("size_bytes:"), "{err}");
    }

    #[test]
    fn a_missing_field_is_named() {
        let err = json_body::<Upload>(&with_body(r#"{"size_bytes": 3}"#)).unwrap_err();
        assert!(err.to_string().contains("content_type"), "{err}");
    }

    #[test]
    fn a_body_that_is_not_exactly_one_json_object_is_a_400_naming_the_problem() {
        let cases = [
            (
                r#"{"size_bytes": 3, "content_type": "a"} trailing"#,
                "invalid_json",
                "nothing after it",
            ),
            (
                r#"{"size_bytes": 3, "content_type": "a"}{"size_bytes": 4, "content_type": "b"}"#,
                "invalid_json",
                "nothing after it",
            ),
            (r#"[3, "a"]"#, "invalid_request", "not an array"),
            (r#""a""#, "invalid_request", "not a string"),
            ("null", "invalid_request", "not null"),
            ("\u{c}{}", "invalid_json", "not valid JSON"),
            ("nope", "invalid_json", "not valid JSON"),
        ];
        for (body, code, words) in cases {
            let err = json_body::<Upload>(&with_body(body)).unwrap_err();
            assert_eq!((err.status(), err.code()), (400, code), "{body}");
            assert!(err.to_string().contains(words), "{body}: {err}");
        }
        let ok = json_body::<Upload>(&with_body(
            " \r\n\t{\"size_bytes\": 3, \"content_type\": \"a\"}\n ",
        ));
        assert_eq!(
            ok.unwrap().size_bytes,
            3,
            "JSON whitespace around it is fine"
        );
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Role {
        User,
    }

    #[derive(Debug, Deserialize)]
    struct Message {
        #[serde(deserialize_with = "string_enum")]
        role: Role,
    }

    #[test]
    fn an_enum_field_takes_its_string_form_only() {
        let ok = json_body::<Message>(&with_body(r#"{"role": "user"}"#)).unwrap();
        assert_eq!(ok.role, Role::User);
        for body in [
            r#"{"role": {"user": null}}"#,
            r#"{"role": ["user"]}"#,
            r#"{"role": "robot"}"#,
        ] {
            let err = json_body::<Message>(&with_body(body)).unwrap_err();
            assert_eq!(
                (err.status(), err.code()),
                (400, "invalid_request"),
                "{body}"
            );
            assert!(err.to_string().starts_with("role:"), "{body}: {err}");
        }
    }

    #[test]
    fn a_repeated_query_parameter_is_read_as_api_gateway_joined_it() {
        let req = request(serde_json::json!({
            "version": "2.0",
            "routeKey": "GET /v1/memories",
            "rawQueryString": "limit=5&limit=7&one=5&blank=",
            "queryStringParameters": {"limit": "5,7", "one": "5", "blank": ""},
            "requestContext": {"http": {"method": "GET", "path": "/v1/memories"}},
            "isBase64Encoded": false
        }));
        assert_eq!(query_param(&req, "limit").as_deref(), Some("5,7"));
        assert_eq!(query_param(&req, "one").as_deref(), Some("5"));
        assert_eq!(query_param(&req, "blank"), None);
        assert_eq!(query_param(&req, "absent"), None);
    }

    #[test]
    fn base64_bodies_are_decoded() {
        let mut req = with_body("eyJzaXplX2J5dGVzIjogMywgImNvbnRlbnRfdHlwZSI6ICJhIn0=");
        req.is_base64_encoded = true;
        assert_eq!(json_body::<Upload>(&req).unwrap().size_bytes, 3);
    }

    #[test]
    fn error_responses_carry_the_standard_body_and_the_request_id() {
        let resp = error_response(&ApiError::not_found("memory"), Some("req-9"));
        assert_eq!(resp.status_code, 404);
        assert_eq!(resp.headers[REQUEST_ID_HEADER], "req-9");
        let Some(Body::Text(text)) = resp.body else {
            panic!("no body")
        };
        assert_eq!(
            text,
            r#"{"status":404,"code":"not_found","message":"memory not found"}"#
        );
    }
}
