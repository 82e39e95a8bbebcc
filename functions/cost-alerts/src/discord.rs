//! Posting to a Discord webhook: rate-limit aware, bounded retries, and never a word of
//! the webhook URL in an error or a log line (reqwest errors are stripped of it).

use std::time::Duration;

use encache_shared::config::Secret;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::embed::WebhookMessage;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all when Discord answers 5xx or the network fails.
    pub max_attempts: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Time kept back before the Lambda deadline to report an error cleanly.
    pub deadline_margin: Duration,
    /// One request's limit.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(4),
            deadline_margin: Duration::from_millis(500),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// Why a post did not go through, and whether trying again later can help.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("Discord kept rate limiting; retry_after {retry_after_ms} ms exceeds the time left")]
    RateLimited { retry_after_ms: u64 },
    #[error("Discord answered {status} on {attempts} attempt(s)")]
    ServerError { status: u16, attempts: u32 },
    #[error("could not reach Discord after {attempts} attempt(s): {cause}")]
    Network { cause: String, attempts: u32 },
    #[error("Discord rejected the message ({status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("the Discord webhook is gone ({status}); configure a new one")]
    WebhookGone { status: u16 },
    #[error("the function ran out of time before the post could be retried")]
    OutOfTime,
}

impl DeliveryError {
    pub fn retryable(&self) -> bool {
        !matches!(self, Self::Rejected { .. } | Self::WebhookGone { .. })
    }
}

/// One HTTP client per container, built on the first post (not at init: building it
/// loads the root store into rustls), and what Discord last told us about its rate limit.
pub struct Discord {
    http: std::sync::OnceLock<reqwest::Client>,
    policy: RetryPolicy,
    /// Do not send before this instant (the bucket is empty until then).
    not_before: Mutex<Option<Instant>>,
}

impl Discord {
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            http: std::sync::OnceLock::new(),
            policy,
            not_before: Mutex::new(None),
        }
    }

    /// The container's HTTPS client. Building it fails only if the TLS backend cannot
    /// start: a retryable delivery failure, as an unreachable Discord is.
    fn http(&self) -> Result<&reqwest::Client, DeliveryError> {
        if let Some(http) = self.http.get() {
            return Ok(http);
        }
        let http = encache_shared::tls::with_process_roots(reqwest::Client::builder())
            .timeout(self.policy.request_timeout)
            .user_agent("encache-cost-alerts (https://github.com/encache, 1)")
            .build()
            .map_err(|e| DeliveryError::Network {
                cause: format!(
                    "building the HTTPS client: {}",
                    encache_shared::outbound::describe(e)
                ),
                attempts: 0,
            })?;
        Ok(self.http.get_or_init(|| http))
    }

    /// Posts `message`, waiting out 429s while `deadline` allows and backing off on 5xx.
    pub async fn post(
        &self,
        webhook: &Secret<String>,
        message: &WebhookMessage,
        deadline: Instant,
    ) -> Result<(), DeliveryError> {
        let mut failures = 0u32;
        let http = self.http()?;
        loop {
            self.wait_for_bucket(deadline).await?;
            let left = self.time_left(deadline).ok_or(DeliveryError::OutOfTime)?;
            let sent = http
                .post(webhook.expose().as_str())
                .timeout(left.min(self.policy.request_timeout))
                .json(message)
                .send()
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    failures += 1;
                    let cause = encache_shared::outbound::describe(e);
                    tracing::warn!(attempt = failures, error = %cause, "Discord unreachable");
                    if failures >= self.policy.max_attempts {
                        return Err(DeliveryError::Network {
                            cause,
                            attempts: failures,
                        });
                    }
                    self.backoff(failures, deadline)
                        .await
                        .map_err(|_| DeliveryError::Network {
                            cause: "no time left for another attempt".into(),
                            attempts: failures,
                        })?;
                    continue;
                }
            };
            let status = response.status();
            self.remember_bucket(response.headers()).await;
            if status.is_success() {
                return Ok(());
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                let header_wait = retry_after_header(response.headers());
                let body = response.text().await.unwrap_or_default();
                // A floor, so a zero retry_after cannot turn into a tight request loop.
                let wait = retry_after_body(&body)
                    .or(header_wait)
                    .unwrap_or(Duration::from_secs(1))
                    .max(Duration::from_millis(50));
                tracing::info!(
                    retry_after_ms = wait.as_millis() as u64,
                    "Discord rate limited the post"
                );
                match self.time_left(deadline) {
                    Some(left) if wait < left => {
                        *self.not_before.lock().await = Some(Instant::now() + wait);
                        continue;
                    }
                    _ => {
                        return Err(DeliveryError::RateLimited {
                            retry_after_ms: wait.as_millis() as u64,
                        });
                    }
                }
            }
            if status.is_server_error() {
                failures += 1;
                tracing::warn!(
                    attempt = failures,
                    status = status.as_u16(),
                    "Discord server error"
                );
                if failures >= self.policy.max_attempts
                    || self.backoff(failures, deadline).await.is_err()
                {
                    return Err(DeliveryError::ServerError {
                        status: status.as_u16(),
                        attempts: failures,
                    });
                }
                continue;
            }
            if status == StatusCode::NOT_FOUND || status == StatusCode::UNAUTHORIZED {
                tracing::error!(status = status.as_u16(), "Discord webhook is gone");
                return Err(DeliveryError::WebhookGone {
                    status: status.as_u16(),
                });
            }
            let body = response.text().await.unwrap_or_default();
            let message = crate::embed::truncate(body.trim(), 1000);
            tracing::error!(status = status.as_u16(), discord_message = %message, "Discord rejected the message");
            return Err(DeliveryError::Rejected {
                status: status.as_u16(),
                message,
            });
        }
    }

    fn time_left(&self, deadline: Instant) -> Option<Duration> {
        deadline
            .checked_duration_since(Instant::now())
            .and_then(|d| d.checked_sub(self.policy.deadline_margin))
            .filter(|d| !d.is_zero())
    }

    async fn wait_for_bucket(&self, deadline: Instant) -> Result<(), DeliveryError> {
        let until = *self.not_before.lock().await;
        if let Some(until) = until {
            let wait = until.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                match self.time_left(deadline) {
                    Some(left) if wait < left => tokio::time::sleep(wait).await,
                    _ => {
                        return Err(DeliveryError::RateLimited {
                            retry_after_ms: wait.as_millis() as u64,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// `X-RateLimit-Remaining: 0` means the next request must wait `Reset-After`.
    async fn remember_bucket(&self, headers: &HeaderMap) {
        let remaining = header_f64(headers, "x-ratelimit-remaining");
        let reset_after = header_f64(headers, "x-ratelimit-reset-after");
        if let (Some(r), Some(after)) = (remaining, reset_after)
            && r <= 0.0
        {
            *self.not_before.lock().await = Some(Instant::now() + secs(after));
        }
    }

    async fn backoff(&self, failures: u32, deadline: Instant) -> Result<(), ()> {
        let exp = self
            .policy
            .base_backoff
            .saturating_mul(1u32 << failures.saturating_sub(1).min(10));
        let wait = exp.min(self.policy.max_backoff);
        match self.time_left(deadline) {
            Some(left) if wait < left => {
                tokio::time::sleep(wait).await;
                Ok(())
            }
            _ => Err(()),
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 3600.0))
}

fn header_f64(headers: &HeaderMap, name: &str) -> Option<f64> {
    headers
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

fn retry_after_header(headers: &HeaderMap) -> Option<Duration> {
    header_f64(headers, "retry-after")
        .or_else(|| header_f64(headers, "x-ratelimit-reset-after"))
        .map(secs)
}

/// `{"retry_after": 0.42, ...}` — seconds, fractional.
fn retry_after_body(body: &str) -> Option<Duration> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("retry_after")?
        .as_f64()
        .filter(|s| s.is_finite())
        .map(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_is_read_from_the_body_in_fractional_seconds() {
        let body =
            r#"{"message": "You are being rate limited.", "retry_after": 64.57, "global": false}"#;
        assert_eq!(retry_after_body(body), Some(Duration::from_secs_f64(64.57)));
        assert_eq!(retry_after_body("not json"), None);
    }

    #[test]
    fn retry_after_falls_back_to_the_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-reset-after", HeaderValue::from_static("0.250"));
        assert_eq!(
            retry_after_header(&headers),
            Some(Duration::from_millis(250))
        );
        headers.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after_header(&headers), Some(Duration::from_secs(2)));
    }

    #[test]
    fn only_rejections_and_dead_webhooks_are_not_retryable() {
        assert!(!DeliveryError::WebhookGone { status: 404 }.retryable());
        assert!(
            !DeliveryError::Rejected {
                status: 400,
                message: String::new()
            }
            .retryable()
        );
        assert!(
            DeliveryError::ServerError {
                status: 502,
                attempts: 4
            }
            .retryable()
        );
        assert!(
            DeliveryError::RateLimited {
                retry_after_ms: 9000
            }
            .retryable()
        );
    }
}
