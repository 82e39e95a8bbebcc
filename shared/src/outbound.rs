//! Calls out of a function over HTTP (Discord's webhook, CloudFormation's `ResponseURL`):
//! what those functions share of reqwest, behind the `outbound` feature so the others do
//! not link it.

/// A reqwest error as a line safe for logs and replies: its kind and its causes, never
/// the URL (a webhook URL or a presigned `ResponseURL` is a credential).
pub fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_description_names_the_failure_but_not_the_url() {
        let e = reqwest::Client::new()
            .get("http://127.0.0.1:9/api/webhooks/1/secret-token")
            .send()
            .await
            .expect_err("nothing listens on port 9");
        let text = super::describe(e);
        assert!(text.starts_with("connection failed"), "{text}");
        assert!(!text.contains("secret-token"), "{text}");
    }
}
