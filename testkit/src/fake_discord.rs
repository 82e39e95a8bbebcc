//! A local Discord webhook endpoint that enforces the documented contract: embed limits
//! (400, code 50035), a per-webhook rate limit of 5 requests per 2 s (429 with
//! `retry_after`, `Retry-After` and `X-RateLimit-*`), 404 for unknown webhooks, and
//! injectable failures.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub const RATE_LIMIT: usize = 5;
pub const RATE_WINDOW: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Inner {
    webhooks: HashSet<(String, String)>,
    windows: HashMap<String, VecDeque<Instant>>,
    /// Statuses to answer the next requests with, before anything else is checked.
    injected: VecDeque<u16>,
    accepted: Vec<Value>,
    rejected: Vec<(u16, Value)>,
    rate_limited: usize,
    requests: usize,
}

#[derive(Clone)]
pub struct FakeDiscord {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeDiscord {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/api/webhooks/{id}/{token}", post(execute_webhook))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, inner }
    }

    /// Registers a webhook and returns its URL (the secret the forwarder must not leak).
    pub fn new_webhook(&self) -> String {
        let id = format!(
            "{}",
            100_000_000_000_000_000u64 + rand_u64() % 1_000_000_000
        );
        let token = format!("tok-{}", uuid::Uuid::new_v4().simple());
        self.inner
            .lock()
            .unwrap()
            .webhooks
            .insert((id.clone(), token.clone()));
        format!("{}/api/webhooks/{id}/{token}", self.base)
    }

    /// A URL of the right shape for a webhook that does not exist.
    pub fn unknown_webhook(&self) -> String {
        format!(
            "{}/api/webhooks/1/tok-gone-{}",
            self.base,
            uuid::Uuid::new_v4().simple()
        )
    }

    pub fn fail_next(&self, statuses: &[u16]) {
        self.inner.lock().unwrap().injected.extend(statuses);
    }

    pub fn accepted(&self) -> Vec<Value> {
        self.inner.lock().unwrap().accepted.clone()
    }

    pub fn rejected(&self) -> Vec<(u16, Value)> {
        self.inner.lock().unwrap().rejected.clone()
    }

    pub fn rate_limited(&self) -> usize {
        self.inner.lock().unwrap().rate_limited
    }

    pub fn requests(&self) -> usize {
        self.inner.lock().unwrap().requests
    }
}

fn rand_u64() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

fn error(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn execute_webhook(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((id, token)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let mut guard = inner.lock().unwrap();
    let s: &mut Inner = &mut guard;
    s.requests += 1;
    if !s.webhooks.contains(&(id.clone(), token)) {
        return error(
            StatusCode::NOT_FOUND,
            json!({"message": "Unknown Webhook", "code": 10015}),
        );
    }

    let now = Instant::now();
    let window = s.windows.entry(id.clone()).or_default();
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= RATE_WINDOW)
    {
        window.pop_front();
    }
    let reset_after = |w: &VecDeque<Instant>| {
        w.front()
            .map(|t| (RATE_WINDOW.saturating_sub(now.duration_since(*t))).as_secs_f64())
            .unwrap_or(RATE_WINDOW.as_secs_f64())
    };
    let mut headers = HeaderMap::new();
    headers.insert("x-ratelimit-limit", HeaderValue::from(RATE_LIMIT));
    headers.insert(
        "x-ratelimit-bucket",
        HeaderValue::from_str(&format!("b-{id}")).unwrap(),
    );
    if window.len() >= RATE_LIMIT {
        let retry_after = (reset_after(window) * 1000.0).ceil() / 1000.0;
        s.rate_limited += 1;
        headers.insert("x-ratelimit-remaining", HeaderValue::from(0));
        headers.insert(
            "x-ratelimit-reset-after",
            HeaderValue::from_str(&format!("{retry_after:.3}")).unwrap(),
        );
        headers.insert("x-ratelimit-scope", HeaderValue::from_static("user"));
        headers.insert("retry-after", HeaderValue::from(retry_after.ceil() as u64));
        let body = json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": false});
        return (StatusCode::TOO_MANY_REQUESTS, headers, axum::Json(body)).into_response();
    }

    if let Some(status) = s.injected.pop_front() {
        let status = StatusCode::from_u16(status).unwrap();
        if status == StatusCode::TOO_MANY_REQUESTS {
            s.rate_limited += 1;
            headers.insert("retry-after", HeaderValue::from(30));
            let body = json!({"message": "You are being rate limited.", "retry_after": 30.0, "global": false});
            return (status, headers, axum::Json(body)).into_response();
        }
        return error(status, json!({"message": "injected failure", "code": 0}));
    }

    window.push_back(now);
    let remaining = RATE_LIMIT - window.len();
    let reset = reset_after(window);
    headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert(
        "x-ratelimit-reset-after",
        HeaderValue::from_str(&format!("{reset:.3}")).unwrap(),
    );

    let message: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                json!({"message": "The request body contains invalid JSON.", "code": 50109}),
            );
        }
    };
    let problems = validate(&message);
    if !problems.is_empty() {
        s.rejected.push((400, message));
        return error(
            StatusCode::BAD_REQUEST,
            json!({"message": "Invalid Form Body", "code": 50035, "errors": problems}),
        );
    }
    s.accepted.push(message);
    (StatusCode::NO_CONTENT, headers).into_response()
}

fn chars(v: Option<&Value>) -> usize {
    v.and_then(Value::as_str).map_or(0, |s| s.chars().count())
}

/// Discord's documented limits; every violation named.
pub fn validate(m: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let embeds = m
        .get("embeds")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let content = chars(m.get("content"));
    if content == 0 && embeds.is_empty() {
        p.push("Cannot send an empty message".into());
    }
    if content > 2000 {
        p.push("content: Must be 2000 or fewer in length.".into());
    }
    if embeds.len() > 10 {
        p.push("embeds: Must be 10 or fewer in length.".into());
    }
    let mut total = 0;
    for (i, e) in embeds.iter().enumerate() {
        let over = |what: &str, n: usize, max: usize| {
            (n > max).then(|| format!("embeds.{i}.{what}: Must be {max} or fewer in length ({n})."))
        };
        let title = chars(e.get("title"));
        let description = chars(e.get("description"));
        let footer = chars(e.pointer("/footer/text"));
        let author = chars(e.pointer("/author/name"));
        p.extend(over("title", title, 256));
        // Discord reads `timestamp` as ISO 8601 and refuses the message otherwise; the
        // strict RFC 3339 profile is what every sender here must produce.
        if let Some(t) = e.get("timestamp") {
            let ok = t.as_str().is_some_and(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                    .is_ok()
            });
            if !ok {
                p.push(format!(
                    "embeds.{i}.timestamp: Could not interpret \"{t}\" as a timestamp."
                ));
            }
        }
        p.extend(over("description", description, 4096));
        p.extend(over("footer.text", footer, 2048));
        p.extend(over("author.name", author, 256));
        total += title + description + footer + author;
        let fields = e
            .get("fields")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        p.extend(over("fields", fields.len(), 25));
        for (j, f) in fields.iter().enumerate() {
            let name = chars(f.get("name"));
            let value = chars(f.get("value"));
            if name == 0 || value == 0 {
                p.push(format!(
                    "embeds.{i}.fields.{j}: name and value are required"
                ));
            }
            p.extend(over(&format!("fields.{j}.name"), name, 256));
            p.extend(over(&format!("fields.{j}.value"), value, 1024));
            total += name + value;
        }
    }
    if total > 6000 {
        p.push(format!(
            "embeds: Embed size exceeds maximum size of 6000 ({total})"
        ));
    }
    p
}
