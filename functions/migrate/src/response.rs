//! The answer CloudFormation waits for: a JSON document PUT to the request's presigned
//! `ResponseURL`, as AWS's own `cfn-response` module sends it.

use std::collections::HashMap;
use std::time::Duration;

use aws_lambda_events::event::cloudformation::{
    CloudFormationCustomResourceResponse, CloudFormationCustomResourceResponseStatus,
};
use reqwest::header::CONTENT_TYPE;

use crate::request::Request;

/// CloudFormation refuses a response body over 4096 bytes ("Response object is too long"):
/// the reason keeps well under it, leaving room for the ids and the data.
pub const MAX_REASON_BYTES: usize = 1024;

/// How long one PUT of the response may take.
pub const PUT_TIMEOUT: Duration = Duration::from_secs(10);

/// The response to `request`, its reason cut to [`MAX_REASON_BYTES`].
pub fn build(
    request: &Request,
    status: CloudFormationCustomResourceResponseStatus,
    reason: &str,
    data: HashMap<String, String>,
) -> CloudFormationCustomResourceResponse {
    let mut response = CloudFormationCustomResourceResponse::default();
    response.status = status;
    response.reason = Some(truncate(reason, MAX_REASON_BYTES));
    response.physical_resource_id = request.physical_resource_id.clone();
    response.stack_id = request.stack_id.clone();
    response.request_id = request.request_id.clone();
    response.logical_resource_id = request.logical_resource_id.clone();
    response.data = data;
    response
}

/// The HTTP client for responses, built once per container.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    encache_shared::tls::with_process_roots(reqwest::Client::builder())
        .timeout(PUT_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent("encache-db-migrate")
        .build()
}

/// PUTs the response. The error never holds the URL (its signature is a credential).
pub async fn send(
    http: &reqwest::Client,
    url: &str,
    response: &CloudFormationCustomResourceResponse,
) -> Result<(), String> {
    let body = serde_json::to_vec(response).map_err(|e| format!("encoding: {e}"))?;
    // The URL is signed without a content type; cfn-response sends an empty one too.
    let sent = http
        .put(url)
        .header(CONTENT_TYPE, "")
        .body(body)
        .send()
        .await
        .map_err(encache_shared::outbound::describe)?;
    let status = sent.status();
    if status.is_success() {
        return Ok(());
    }
    let text = sent.text().await.unwrap_or_default();
    Err(format!(
        "the response URL answered {status}: {}",
        truncate(text.trim(), 300)
    ))
}

/// Versions as CloudFormation data and log fields show them: `v1,v2`.
pub fn join(versions: &[i64]) -> String {
    versions
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// At most `max` bytes, cut at a character boundary, with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let ellipsis = '…';
    let mut end = max - ellipsis.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_reason_is_cut_to_the_limit_at_a_character_boundary() {
        let long = "é".repeat(MAX_REASON_BYTES);
        let cut = truncate(&long, MAX_REASON_BYTES);
        assert!(cut.len() <= MAX_REASON_BYTES, "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("short", MAX_REASON_BYTES), "short");
    }
}
