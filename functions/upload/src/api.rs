//! `POST /v1/memories/uploads`: validate the declaration, record a pending memory and
//! hand back a presigned PUT that S3 only accepts with the declared type and length.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use encache_shared::config::{Env, ProcessEnv};
use encache_shared::db::{Database, bounded};
use encache_shared::http::{Caller, json_body, logged, request_id, respond};
use encache_shared::idempotency::IdempotencyKey;
use encache_shared::{ApiError, aws, users};
use lambda_runtime::{Error, LambdaEvent};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::keys::object_key;
use crate::settings::ApiSettings;
use crate::store::{self, NewMemory};

/// What the API needs, built once per container.
pub struct Deps {
    pub db: Database,
    pub s3: aws::Lazy<aws_sdk_s3::Client>,
    pub settings: ApiSettings,
}

impl Deps {
    pub async fn from_env() -> anyhow::Result<Self> {
        let env = Env::new(&ProcessEnv);
        let settings = ApiSettings::from_env(&env)?;
        // The SDK clients are built on first use (shared::aws).
        Ok(Self {
            db: Database::from_env(&env, None)?,
            s3: aws::Lazy::new(aws::s3_client),
            settings,
        })
    }
}

/// A JSON integer, also when written with a zero fraction or an exponent (`1036.0`,
/// `1.036e3`): the API description's `integer` is JSON Schema's, any number without a
/// fractional part. `1036.5`, or one beyond `i64`, is a 400 naming the field.
fn whole_number<'de, D: serde::Deserializer<'de>>(de: D) -> Result<i64, D::Error> {
    use serde::de::{Error, Unexpected, Visitor};
    struct Whole;
    impl Visitor<'_> for Whole {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an integer")
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<i64, E> {
            // -2^63 and 2^63 are exact in f64; every whole f64 in between fits i64.
            if v.fract() == 0.0
                && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&v)
            {
                Ok(v as i64)
            } else {
                Err(E::invalid_value(Unexpected::Float(v), &self))
            }
        }
    }
    de.deserialize_i64(Whole)
}

pub const MAX_FILE_NAME_CHARS: usize = 255;
pub const MAX_TITLE_CHARS: usize = 200;

/// The request body. Unknown fields are ignored.
#[derive(Debug, Deserialize)]
pub struct CreateUpload {
    pub content_type: String,
    /// Signed, so that a negative value is reported as such rather than as a type error.
    #[serde(deserialize_with = "whole_number")]
    pub size_bytes: i64,
    #[serde(default)]
    pub file_name: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    /// RFC 3339, within the range PostgreSQL stores and responses render (shared::timestamp).
    #[serde(default, deserialize_with = "encache_shared::timestamp::optional")]
    pub captured_at: Option<OffsetDateTime>,
}

/// The 201 body: where and how to PUT the bytes.
#[derive(Debug, Serialize)]
pub struct UploadTicket {
    pub memory_id: Uuid,
    pub upload_url: String,
    pub method: String,
    /// Headers the PUT must carry exactly as given; they are part of the signature.
    pub headers: BTreeMap<String, String>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// A declaration that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub content_type: String,
    pub size_bytes: i64,
    pub file_name: Option<String>,
    pub title: Option<String>,
    pub captured_at: Option<OffsetDateTime>,
}

/// The Lambda entry point: answers every outcome (errors included) as an HTTP response.
pub async fn handle(
    deps: &Deps,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> Result<ApiGatewayV2httpResponse, Error> {
    let req = &event.payload;
    Ok(logged(req, async {
        let result = create_upload(req, deps, SystemTime::now())
            .await
            .map(|ticket| (201, ticket));
        respond(result, request_id(req))
    })
    .await)
}

/// The route's scope in ids derived from an `Idempotency-Key`.
const IDEMPOTENCY_SCOPE: &str = "POST /v1/memories/uploads";

/// The whole use case, with the clock passed in. Everything is validated and signed
/// before the first write, so a rejected request leaves no trace. With an
/// `Idempotency-Key` the memory's id is the key's: a repeat of the request gets the same
/// memory (and a URL with the same expiry), never a second one.
pub async fn create_upload(
    req: &ApiGatewayV2httpRequest,
    deps: &Deps,
    now: SystemTime,
) -> Result<UploadTicket, ApiError> {
    let Deps { db, s3, settings } = deps;
    let caller = Caller::from_request(req)?;
    let idempotency = IdempotencyKey::from_request(req)?;
    let declared = validate(json_body::<CreateUpload>(req)?, settings)?;

    // Whole seconds: SigV4 dates have no fraction, and the row should say the same.
    let now = whole_seconds(now);
    let expires_at = OffsetDateTime::from(now + settings.url_expiry);

    // The caller's row, created from the token's claims on first sight exactly as
    // post-confirmation and GET /v1/me create it (the same normalised email).
    let user_id = bounded(settings.db_timeout, async { users::for_caller(db.pool().await?, &caller).await })
        .await??
        .map(|user| user.id)
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "no profile for this identity yet: sign in with an ID token whose email claim is a valid address"
                    .into(),
            )
        })?;
    let memory_id = idempotency.as_ref().map_or_else(Uuid::new_v4, |k| {
        k.resource_id(&caller.sub, &[IDEMPOTENCY_SCOPE])
    });
    let key = object_key(user_id, memory_id);
    let presigned = presign_put(
        s3,
        &settings.bucket,
        &key,
        &declared.content_type,
        declared.size_bytes,
        now,
        settings.url_expiry,
    )
    .await?;

    let memory = NewMemory {
        id: memory_id,
        user_id,
        s3_key: &key,
        title: declared.title.as_deref(),
        file_name: declared.file_name.as_deref(),
        content_type: &declared.content_type,
        size_bytes: declared.size_bytes,
        captured_at: declared.captured_at,
        upload_expires_at: expires_at,
    };
    let inserted = bounded(settings.db_timeout, async {
        store::insert_pending(db.pool().await?, &memory).await
    })
    .await?;
    if !inserted {
        // The key's memory exists: this is a repeat, if it declared the same upload.
        let first_expiry = bounded(settings.db_timeout, async {
            store::same_declaration(db.pool().await?, &memory).await
        })
        .await?
        .ok_or_else(IdempotencyKey::reused)?;
        tracing::info!(%memory_id, %user_id, "upload repeated (Idempotency-Key): same memory");
        let start = SystemTime::from(first_expiry) - settings.url_expiry;
        let presigned = presign_put(
            s3,
            &settings.bucket,
            &key,
            &declared.content_type,
            declared.size_bytes,
            start,
            settings.url_expiry,
        )
        .await?;
        return Ok(UploadTicket {
            memory_id,
            upload_url: presigned.uri().to_owned(),
            method: presigned.method().to_owned(),
            headers: client_headers(&presigned),
            expires_at: first_expiry,
        });
    }
    tracing::info!(%memory_id, %user_id, size_bytes = declared.size_bytes,
        content_type = %declared.content_type, "upload created");

    Ok(UploadTicket {
        memory_id,
        upload_url: presigned.uri().to_owned(),
        method: presigned.method().to_owned(),
        headers: client_headers(&presigned),
        expires_at,
    })
}

/// The headers the client must send with the PUT: exactly the signed ones except `host`
/// (its HTTP client sets that). Anything else the SDK attached to the request — e.g. an
/// `x-amzn-trace-id` inside Lambda — is not part of the contract and is left out.
fn client_headers(presigned: &PresignedRequest) -> BTreeMap<String, String> {
    let signed = url_query_value(presigned.uri(), "X-Amz-SignedHeaders").unwrap_or_default();
    let signed: Vec<&str> = signed.split(';').filter(|h| *h != "host").collect();
    presigned
        .headers()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .filter(|(k, _)| signed.contains(&k.as_str()))
        .collect()
}

/// One query parameter of a URL, percent-decoded.
fn url_query_value(url: &str, name: &str) -> Option<String> {
    let (_, q) = url.split_once('?')?;
    q.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
}

/// Checks a declaration against the configured allowlist and limits; every error names
/// its field.
pub fn validate(body: CreateUpload, settings: &ApiSettings) -> Result<Declared, ApiError> {
    let content_type = body.content_type.trim().to_ascii_lowercase();
    if content_type.is_empty() {
        return Err(ApiError::invalid_field("content_type", "is required"));
    }
    if !settings.allowed_content_types.contains(&content_type) {
        return Err(ApiError::invalid_field(
            "content_type",
            format!(
                "{content_type:?} is not accepted; accepted types: {}",
                settings.allowed_content_types.join(", ")
            ),
        ));
    }
    if body.size_bytes <= 0 {
        return Err(ApiError::invalid_field(
            "size_bytes",
            "must be greater than zero",
        ));
    }
    if body.size_bytes > settings.max_size_bytes {
        return Err(ApiError::invalid_field(
            "size_bytes",
            format!("must be at most {} bytes", settings.max_size_bytes),
        ));
    }
    Ok(Declared {
        content_type,
        size_bytes: body.size_bytes,
        file_name: text_field("file_name", body.file_name, MAX_FILE_NAME_CHARS)?,
        title: text_field("title", body.title, MAX_TITLE_CHARS)?,
        captured_at: body.captured_at,
    })
}

/// An optional label: trimmed, blank counts as absent, bounded, no control characters.
fn text_field(name: &str, value: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > max {
        return Err(ApiError::invalid_field(
            name,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            name,
            "must not contain control characters",
        ));
    }
    Ok(Some(value))
}

/// A presigned PUT made by the SDK. Content type and length are set on the request, so
/// they are signed headers: S3 refuses a PUT that sends anything else.
pub async fn presign_put(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    content_type: &str,
    size_bytes: i64,
    start: SystemTime,
    expires_in: Duration,
) -> Result<PresignedRequest, ApiError> {
    let config = PresigningConfig::builder()
        .start_time(start)
        .expires_in(expires_in)
        .build()
        .context("building the presigning config")?;
    let presigned = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .content_length(size_bytes)
        .presigned(config)
        .await
        .context("presigning the upload")?;
    Ok(presigned)
}

fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};

    fn s3() -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new("AKIDEXAMPLE", "secret", None, None, "t"))
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    fn settings() -> ApiSettings {
        ApiSettings {
            bucket: "encache-uploads".into(),
            allowed_content_types: vec!["image/jpeg".into(), "video/mp4".into()],
            max_size_bytes: 1000,
            url_expiry: Duration::from_secs(900),
            db_timeout: Duration::from_secs(3),
        }
    }

    fn query(url: &str, name: &str) -> Option<String> {
        url_query_value(url, name)
    }

    async fn presign(content_type: &str, size: i64) -> PresignedRequest {
        presign_put(
            &s3(),
            "encache-uploads",
            "users/u/memories/m",
            content_type,
            size,
            UNIX_EPOCH + Duration::from_secs(1_795_273_701),
            Duration::from_secs(900),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn the_presigned_put_signs_content_type_and_length_and_expires_in_fifteen_minutes() {
        let p = presign("image/jpeg", 123).await;

        assert_eq!(p.method(), "PUT");
        assert_eq!(
            query(p.uri(), "X-Amz-SignedHeaders").as_deref(),
            Some("content-length;content-type;host")
        );
        assert_eq!(query(p.uri(), "X-Amz-Expires").as_deref(), Some("900"));
        assert_eq!(
            query(p.uri(), "X-Amz-Date").as_deref(),
            Some("20261121T150821Z")
        );
        assert!(query(p.uri(), "X-Amz-Signature").is_some());
        let headers: BTreeMap<_, _> = p.headers().collect();
        assert_eq!(headers.get("content-type"), Some(&"image/jpeg"));
        assert_eq!(headers.get("content-length"), Some(&"123"));
        let for_client = client_headers(&p);
        assert_eq!(
            for_client.keys().collect::<Vec<_>>(),
            vec!["content-length", "content-type"],
            "the client is told exactly the signed headers, host aside"
        );
    }

    #[tokio::test]
    async fn another_type_or_length_yields_another_signature() {
        let sig = |p: PresignedRequest| query(p.uri(), "X-Amz-Signature").unwrap();
        let base = sig(presign("image/jpeg", 123).await);
        assert_eq!(base, sig(presign("image/jpeg", 123).await));
        assert_ne!(base, sig(presign("image/png", 123).await));
        assert_ne!(base, sig(presign("image/jpeg", 124).await));
    }

    fn body(json: serde_json::Value) -> CreateUpload {
        serde_json::from_value(json).unwrap()
    }

    fn rejected(json: serde_json::Value) -> String {
        let err = validate(body(json), &settings()).unwrap_err();
        assert_eq!((err.status(), err.code()), (400, "invalid_request"));
        err.to_string()
    }

    #[test]
    fn a_valid_declaration_is_normalised() {
        let d = validate(
            body(serde_json::json!({
                "content_type": " Image/JPEG ", "size_bytes": 1000,
                "file_name": "  beach.jpg ", "title": "", "captured_at": "2026-11-20T10:00:00Z"
            })),
            &settings(),
        )
        .unwrap();
        assert_eq!(d.content_type, "image/jpeg");
        assert_eq!(d.file_name.as_deref(), Some("beach.jpg"));
        assert_eq!(d.title, None);
        assert!(d.captured_at.is_some());
    }

    #[test]
    fn sizes_must_be_positive_and_within_the_maximum() {
        for size in [0, -1, 1001] {
            let msg =
                rejected(serde_json::json!({"content_type": "image/jpeg", "size_bytes": size}));
            assert!(msg.starts_with("size_bytes:"), "{msg}");
        }
    }

    #[test]
    fn a_size_written_with_a_zero_fraction_is_that_integer_and_a_fraction_is_refused() {
        for (json, want) in [
            ("1036", 1036),
            ("1036.0", 1036),
            ("1.036e3", 1036),
            ("-0.0", 0),
        ] {
            let b: CreateUpload = serde_json::from_str(&format!(
                r#"{{"content_type": "image/jpeg", "size_bytes": {json}}}"#
            ))
            .unwrap();
            assert_eq!(b.size_bytes, want, "{json}");
        }
        for json in ["1036.5", "1e19", "9223372036854775808", "\"5\"", "null"] {
            let err = serde_json::from_str::<CreateUpload>(&format!(
                r#"{{"content_type": "image/jpeg", "size_bytes": {json}}}"#
            ))
            .unwrap_err();
            assert!(
                err.to_string().contains("size_bytes") || err.is_data(),
                "{json}: {err}"
            );
        }
    }

    #[test]
    fn a_type_outside_the_allowlist_is_named() {
        let msg = rejected(serde_json::json!({"content_type": "text/html", "size_bytes": 5}));
        assert!(msg.starts_with("content_type:"), "{msg}");
    }

    #[test]
    fn over_long_or_control_character_labels_are_named() {
        let long = "x".repeat(MAX_FILE_NAME_CHARS + 1);
        let msg = rejected(
            serde_json::json!({"content_type": "image/jpeg", "size_bytes": 5, "file_name": long}),
        );
        assert!(msg.starts_with("file_name:"), "{msg}");
        let long = "é".repeat(MAX_TITLE_CHARS + 1);
        let msg = rejected(
            serde_json::json!({"content_type": "image/jpeg", "size_bytes": 5, "title": long}),
        );
        assert!(msg.starts_with("title:"), "{msg}");
        let msg = rejected(
            serde_json::json!({"content_type": "image/jpeg", "size_bytes": 5, "file_name": "a\u{0}b"}),
        );
        assert!(msg.starts_with("file_name:"), "{msg}");
    }

    #[test]
    fn a_title_of_exactly_the_maximum_is_accepted() {
        let title = "é".repeat(MAX_TITLE_CHARS);
        assert!(
            validate(
                body(serde_json::json!({"content_type": "image/jpeg", "size_bytes": 5, "title": title})),
                &settings()
            )
            .is_ok()
        );
    }
}
