//! Payload format 2.0, both ways: the `ApiGatewayV2httpRequest` a function gets for an
//! HTTP request (headers, cookies, query, path parameters, the JWT claims, base64 for
//! binary bodies), and API Gateway's mapping of the function's answer back to HTTP.

use std::collections::HashMap;
use std::net::SocketAddr;

use aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
    ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext,
    ApiGatewayV2httpRequestContextHttpDescription,
};
use aws_lambda_events::query_map::QueryMap;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use super::jwt::Accepted;
use super::routes::{Route, decode};
use crate::template::LOCAL_ACCOUNT_ID;

/// API Gateway's own answer (`{"message": ...}`), for what never reaches a function.
pub(super) fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "message": text }))).into_response()
}

/// A header as API Gateway reads it (for the event and for the authorizer's identity
/// source): a repeated header's values joined with commas. Two `Authorization` headers
/// are then one malformed token, not the first of them. A value with bytes outside
/// visible ASCII is passed on (lossily decoded), never dropped: the function must see
/// that the client sent something, and refuse it.
pub(super) fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

fn is_text(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|ct| {
        let ct = ct.to_ascii_lowercase();
        ct.starts_with("text/")
            || ct.contains("json")
            || ct.contains("xml")
            || ct.contains("javascript")
            || ct.contains("x-www-form-urlencoded")
    })
}

pub(super) fn build_event(
    parts: &http::request::Parts,
    body: Bytes,
    route: &Route,
    path_params: HashMap<String, String>,
    jwt: Option<Accepted>,
    peer: SocketAddr,
    request_id: &str,
) -> ApiGatewayV2httpRequest {
    let mut headers = HeaderMap::new();
    let mut cookies = Vec::new();
    for name in parts.headers.keys() {
        if name == "cookie" {
            cookies.extend(
                parts
                    .headers
                    .get_all(name)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(';'))
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty()),
            );
            continue;
        }
        let Some(joined) = header(&parts.headers, name.as_str()) else {
            continue;
        };
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(joined.as_bytes()),
        ) {
            headers.insert(n, v);
        }
    }
    let raw_query = parts.uri.query().unwrap_or_default().to_owned();
    let mut query: HashMap<String, String> = HashMap::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode(&v.replace('+', " "));
        // Payload 2.0 joins a repeated parameter's values with commas, in order:
        // `limit=5&limit=7` reaches the function as `"limit": "5,7"`.
        query
            .entry(decode(&k.replace('+', " ")))
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    let content_type = header(&parts.headers, "content-type");
    let (body, is_base64) = if body.is_empty() {
        (None, false)
    } else if is_text(content_type.as_deref()) && std::str::from_utf8(&body).is_ok() {
        (Some(String::from_utf8_lossy(&body).into_owned()), false)
    } else {
        (Some(B64.encode(&body)), true)
    };
    let now = time::OffsetDateTime::now_utc();
    let time_text = now
        .format(time::macros::format_description!(
            "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
        ))
        .unwrap_or_default();

    let mut http_ctx = ApiGatewayV2httpRequestContextHttpDescription::default();
    http_ctx.method = parts.method.clone();
    http_ctx.path = Some(parts.uri.path().to_owned());
    http_ctx.protocol = Some(format!("{:?}", parts.version));
    http_ctx.source_ip = Some(peer.ip().to_string());
    http_ctx.user_agent = header(&parts.headers, "user-agent");

    let mut ctx = ApiGatewayV2httpRequestContext::default();
    ctx.route_key = Some(route.route_key());
    ctx.account_id = Some(LOCAL_ACCOUNT_ID.into());
    ctx.stage = Some("$default".into());
    ctx.request_id = Some(request_id.to_owned());
    ctx.apiid = Some("local".into());
    let host = header(&parts.headers, "host").unwrap_or_else(|| "localhost".into());
    ctx.domain_prefix = host.split('.').next().map(str::to_owned);
    ctx.domain_name = Some(host);
    ctx.time = Some(time_text);
    ctx.time_epoch = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    ctx.http = http_ctx;
    if let Some(accepted) = jwt {
        let mut desc = ApiGatewayRequestAuthorizerJwtDescription::default();
        desc.claims = accepted.claims;
        desc.scopes = accepted.scopes;
        let mut auth = ApiGatewayRequestAuthorizer::default();
        auth.jwt = Some(desc);
        ctx.authorizer = Some(auth);
    }

    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".into());
    event.route_key = Some(route.route_key());
    event.raw_path = Some(parts.uri.path().to_owned());
    event.raw_query_string = Some(raw_query);
    event.cookies = (!cookies.is_empty()).then_some(cookies);
    event.headers = headers;
    event.query_string_parameters = QueryMap::from(query);
    event.path_parameters = path_params;
    event.request_context = ctx;
    event.body = body;
    event.is_base64_encoded = is_base64;
    event
}

/// API Gateway's mapping of a payload 2.0 response: a `statusCode` object is taken
/// apart; any other valid JSON is a 200 `application/json` body, as is.
pub fn map_response(out: &[u8]) -> Response {
    let Ok(value) = serde_json::from_slice::<Value>(out) else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let Some(status) = value.get("statusCode").and_then(|s| {
        s.as_u64()
            .or_else(|| s.as_str().and_then(|t| t.parse().ok()))
    }) else {
        return (
            StatusCode::OK,
            [("content-type", "application/json")],
            out.to_vec(),
        )
            .into_response();
    };
    let Some(status) = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
    else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let text = value.get("body").map(|b| match b {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let body = match (text, value.get("isBase64Encoded").and_then(Value::as_bool)) {
        (None, _) => Vec::new(),
        (Some(t), Some(true)) => match B64.decode(t.as_bytes()) {
            Ok(b) => b,
            Err(_) => return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        },
        (Some(t), _) => t.into_bytes(),
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    if let Some(map) = value.get("headers").and_then(Value::as_object) {
        for (k, v) in map {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(&v),
            ) {
                headers.insert(n, v);
            }
        }
    }
    if let Some(cookies) = value.get("cookies").and_then(Value::as_array) {
        for c in cookies.iter().filter_map(Value::as_str) {
            if let Ok(v) = HeaderValue::from_str(c) {
                headers.append("set-cookie", v);
            }
        }
    }
    response
}
