//! The smoke checks: one request per API function, sent to its new version directly
//! (no traffic reaches it yet), and what its answer must be.
//!
//! A check proves the new code starts with the deployed configuration and answers with
//! the API's contract: `/v1/health` reaches the database (schema migrated, password
//! readable, network path open) and the authenticated routes refuse a request without
//! claims with a `StandardError` 401, before touching any data.

use serde_json::{Value, json};

/// What a new version must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// 200 with `{"status": "ok"}`.
    Healthy,
    /// 401 with a `StandardError` whose code is `unauthorized`.
    Unauthorized,
}

/// One API function: the variable holding its new version's ARN, and the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    pub variable: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    pub expect: Expect,
}

/// Every API function behind the HTTP API. template.yaml gives the hook each
/// `*_VERSION` variable (`!Ref <Function>.Version`); a missing one is a start-up error.
pub const CHECKS: &[Check] = &[
    Check {
        variable: "HEALTH_FUNCTION_VERSION",
        method: "GET",
        path: "/v1/health",
        expect: Expect::Healthy,
    },
    Check {
        variable: "ME_FUNCTION_VERSION",
        method: "GET",
        path: "/v1/me",
        expect: Expect::Unauthorized,
    },
    Check {
        variable: "MEMORY_FEED_FUNCTION_VERSION",
        method: "GET",
        path: "/v1/memories",
        expect: Expect::Unauthorized,
    },
    Check {
        variable: "CONVERSATION_FEED_FUNCTION_VERSION",
        method: "GET",
        path: "/v1/conversations",
        expect: Expect::Unauthorized,
    },
    Check {
        variable: "UPLOAD_API_FUNCTION_VERSION",
        method: "POST",
        path: "/v1/memories/uploads",
        expect: Expect::Unauthorized,
    },
];

impl Check {
    /// The HTTP API (payload 2.0) event API Gateway would send for this route, with no
    /// authorizer context (the hook holds no user's token).
    pub fn event(&self, request_id: &str) -> Value {
        let route = format!("{} {}", self.method, self.path);
        json!({
            "version": "2.0",
            "routeKey": route,
            "rawPath": self.path,
            "rawQueryString": "",
            "headers": {"user-agent": "encache-deploy-hook", "content-type": "application/json"},
            "requestContext": {
                "accountId": "anonymous",
                "apiId": "deploy-hook",
                "domainName": "deploy-hook.invalid",
                "domainPrefix": "deploy-hook",
                "http": {
                    "method": self.method,
                    "path": self.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": "encache-deploy-hook"
                },
                "requestId": request_id,
                "routeKey": route,
                "stage": "$default",
                "time": "01/Jan/2026:00:00:00 +0000",
                "timeEpoch": 0
            },
            "body": if self.method == "POST" { Value::String("{}".into()) } else { Value::Null },
            "isBase64Encoded": false
        })
    }

    /// Judges the version's answer: `Ok(())`, or why it fails.
    /// `function_error` is Lambda's `X-Amz-Function-Error` (the function crashed or
    /// returned an error instead of a response).
    pub fn judge(&self, function_error: Option<&str>, payload: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(payload);
        let excerpt: String = text.chars().take(300).collect();
        if let Some(kind) = function_error {
            return Err(format!("the function failed ({kind}): {excerpt}"));
        }
        // Read as API Gateway reads a payload 2.0 answer: statusCode and body (a string);
        // every other field is optional.
        let response: Value = serde_json::from_slice(payload)
            .map_err(|e| format!("the answer is not JSON ({e}): {excerpt}"))?;
        let status = response["statusCode"].as_i64().ok_or_else(|| {
            format!("the answer is not an HTTP API response (no statusCode): {excerpt}")
        })?;
        let body: Value = response["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        match self.expect {
            Expect::Healthy if status == 200 && body["status"] == "ok" => Ok(()),
            Expect::Healthy => Err(format!(
                "expected 200 {{\"status\":\"ok\"}}, got {status} {body}"
            )),
            Expect::Unauthorized
                if status == 401
                    && body["code"] == "unauthorized"
                    && body["message"].is_string() =>
            {
                Ok(())
            }
            Expect::Unauthorized => Err(format!(
                "expected 401 StandardError (code unauthorized), got {status} {body}"
            )),
        }
    }
}
