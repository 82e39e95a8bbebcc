//! The HTTP API emulation: routing, payload 2.0 events, response mapping, CORS, and the
//! JWT authorizer enforced as API Gateway enforces it.

mod common;

use std::sync::atomic::Ordering;

use base64::Engine;
use common::*;
use serde_json::{Value, json};

async fn body_event(resp: reqwest::Response) -> Value {
    let body: Value = resp.json().await.expect("json body");
    let event = body["event"].clone();
    assert!(
        event.is_object(),
        "the fixture echoes the event it got: {body}"
    );
    event
}

#[tokio::test]
async fn an_open_route_reaches_its_function_with_a_payload_2_event() {
    // given
    let jwks = jwks_server().await;
    let (_stack, running) = start_fixture(&jwks).await;

    // when
    let resp = client()
        .get(format!("{}/v1/public?tag=a&tag=b&x=1", running.url))
        .header("cookie", "a=1; b=2")
        .send()
        .await
        .expect("request");

    // then
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-fixture"], "yes");
    let cookies: Vec<_> = resp.headers().get_all("set-cookie").iter().collect();
    assert_eq!(
        cookies.len(),
        2,
        "each response cookie is a Set-Cookie header"
    );
    let event = body_event(resp).await;
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "GET /v1/public");
    assert_eq!(event["rawPath"], "/v1/public");
    assert_eq!(event["rawQueryString"], "tag=a&tag=b&x=1");
    assert_eq!(event["queryStringParameters"]["tag"], "a,b");
    assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
    assert_eq!(event["requestContext"]["http"]["method"], "GET");
    assert_eq!(event["requestContext"]["stage"], "$default");
    assert!(event["requestContext"].get("authorizer").is_none());
    running.stop().await;
}

#[tokio::test]
async fn path_parameters_and_greedy_paths_reach_the_function_decoded() {
    let jwks = jwks_server().await;
    let (_stack, running) = start_fixture(&jwks).await;
    let token = sign(&id_claims());

    let item = client()
        .get(format!("{}/v1/items/abc%20def", running.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(item.status(), 200);
    let event = body_event(item).await;
    assert_eq!(event["pathParameters"]["id"], "abc def");
    assert_eq!(event["routeKey"], "GET /v1/items/{id}");

    // An exact route wins over a parameter route (and this one is open).
    let special = client()
        .get(format!("{}/v1/items/special", running.url))
        .send()
        .await
        .expect("request");
    assert_eq!(special.status(), 200);
    assert_eq!(
        body_event(special).await["routeKey"],
        "GET /v1/items/special"
    );

    let files = client()
        .delete(format!("{}/v1/files/a/b/c.txt", running.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(files.status(), 200);
    let event = body_event(files).await;
    assert_eq!(event["pathParameters"]["proxy"], "a/b/c.txt");
    assert_eq!(event["routeKey"], "ANY /v1/files/{proxy+}");
    running.stop().await;
}

#[tokio::test]
async fn an_unknown_route_is_404_not_found_like_the_gateway() {
    let jwks = jwks_server().await;
    let (_stack, running) = start_fixture(&jwks).await;
    for (method, path) in [
        ("GET", "/v1/nothing"),
        ("POST", "/v1/public"),
        ("GET", "/v1/items"),
    ] {
        let resp = client()
            .request(
                method.parse().expect("method"),
                format!("{}{path}", running.url),
            )
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 404, "{method} {path}");
        assert_eq!(
            resp.json::<Value>().await.expect("json"),
            json!({"message": "Not Found"})
        );
    }
    running.stop().await;
}

#[tokio::test]
async fn accepted_claims_reach_the_function_as_strings() {
    let jwks = jwks_server().await;
    let (_stack, running) = start_fixture(&jwks).await;
    let claims = id_claims();

    let resp = client()
        .post(format!("{}/v1/private", running.url))
        .header("authorization", sign(&claims)) // without "Bearer ", as API Gateway allows
        .header("content-type", "application/json")
        .body(r#"{"hello":"world"}"#)
        .send()
        .await
        .expect("request");

    assert_eq!(resp.status(), 200);
    let event = body_event(resp).await;
    let got = &event["requestContext"]["authorizer"]["jwt"]["claims"];
    assert_eq!(got["exp"], claims["exp"].to_string());
    assert_eq!(got["cognito:groups"], "[admins beta]");
    assert_eq!(got["sub"], claims["sub"]);
    assert_eq!(event["body"], r#"{"hello":"world"}"#);
    assert_eq!(event["isBase64Encoded"], false);
    assert_eq!(jwks.hits.load(Ordering::SeqCst), 1);

    // The JWKS is cached: a second request does not fetch it again.
    let again = client()
        .post(format!("{}/v1/private", running.url))
        .bearer_auth(sign(&claims))
        .send()
        .await
        .expect("request");
    assert_eq!(again.status(), 200);
    assert_eq!(jwks.hits.load(Ordering::SeqCst), 1);
    running.stop().await;
}

#[tokio::test]
async fn an_access_token_without_aud_is_accepted_by_its_client_id() {
    let jwks = jwks_server().await;
    let (_stack, running) = start_fixture(&jwks).await;
    let mut claims = id_claims();
    claims.as_object_mut().expect("object").remove("aud");
    claims["client_id"] = json!(CLIENT_ID);
    claims["scope"] = json!("aws.cognito.signin.user.admin openid");

    let resp = client()
        .post(format!("{}/v1/private", running.url))
        .bearer_auth(sign(&claims))
        .send()
        .await
        .expect("request");

    assert_eq!(resp.status(), 200);
    let event = body_event(resp).await;
    assert_eq!(
        event["requestContext"]["authorizer"]["jwt"]["scopes"],
        json!(["aws.cognito.signin.user.admin", "openid"])
    );
    running.stop().await;
}

fn tampered(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: Value =
        serde_json::from_slice(&b64.decode(parts[1]).expect("payload")).expect("json");
    payload["sub"] = json!("someone-else");
    format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(payload.to_string()),
        parts[2]
    )
}

fn alg_none(claims: &Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"JWT","kid":"test-key"}"#),
        b64.encode(claims.to_string())
    )
}

#[tokio::test]
async fn every_bad_token_is_401_unauthorized_and_the_function_is_not_invoked() {
    // given
    let jwks = jwks_server().await;
    let (_stack, running) = start_fixture(&jwks).await;
    let with = |k: &str, v: Value| {
        let mut c = id_claims();
        c[k] = v;
        c
    };
    let mut no_aud_wrong_client = id_claims();
    no_aud_wrong_client
        .as_object_mut()
        .expect("object")
        .remove("aud");
    no_aud_wrong_client["client_id"] = json!("someone-elses-client");
    let cases: Vec<(&str, Option<String>)> = vec![
        ("expired", Some(sign(&with("exp", json!(now() - 60))))),
        (
            "not yet valid",
            Some(sign(&with("nbf", json!(now() + 600)))),
        ),
        (
            "issued in the future",
            Some(sign(&with("iat", json!(now() + 600)))),
        ),
        (
            "wrong issuer",
            Some(sign(&with("iss", json!("https://evil.test/pool-test")))),
        ),
        (
            "wrong audience",
            Some(sign(&with("aud", json!("another-client")))),
        ),
        ("wrong client_id", Some(sign(&no_aud_wrong_client))),
        ("alg none", Some(alg_none(&id_claims()))),
        ("tampered signature", Some(tampered(&sign(&id_claims())))),
        (
            "signed by another key",
            Some(sign_with(&id_claims(), "test-key", "other-rsa.pem")),
        ),
        (
            "unknown kid",
            Some(sign_with(&id_claims(), "rotated-away", "test-rsa.pem")),
        ),
        ("garbage", Some("not-a-jwt".into())),
        ("missing header", None),
    ];

    for (case, token) in cases {
        // when
        let mut req = client().post(format!("{}/v1/private", running.url));
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");

        // then
        assert_eq!(resp.status(), 401, "{case}");
        assert_eq!(
            resp.json::<Value>().await.expect("json"),
            json!({"message": "Unauthorized"}),
            "{case}"
        );
    }
    assert_eq!(
        running.runtime.invocation_count("EchoFunction"),
        0,
        "no rejected request reached the function"
    );
    running.stop().await;
}

#[tokio::test]
async fn responses_are_mapped_back_like_api_gateway_does() {
    let jwks = jwks_server().await;
    let (_stack, running) = start_fixture(&jwks).await;

    let plain = client()
        .get(format!("{}/v1/public?mode=plain", running.url))
        .send()
        .await
        .expect("request");
    assert_eq!(plain.status(), 200);
    assert_eq!(plain.headers()["content-type"], "application/json");
    assert_eq!(
        plain.json::<Value>().await.expect("json"),
        json!({"plain": true})
    );

    let binary = client()
        .get(format!("{}/v1/public?mode=base64", running.url))
        .send()
        .await
        .expect("request");
    assert_eq!(binary.status(), 201);
    assert_eq!(binary.headers()["content-type"], "text/plain");
    assert_eq!(binary.text().await.expect("text"), "hello");

    let failing = client()
        .get(format!("{}/v1/public?mode=fail", running.url))
        .send()
        .await
        .expect("request");
    assert_eq!(failing.status(), 500);
    assert_eq!(
        failing.json::<Value>().await.expect("json"),
        json!({"message": "Internal Server Error"})
    );
    running.stop().await;
}

#[tokio::test]
async fn cors_comes_from_the_template() {
    let jwks = jwks_server().await;
    let (_stack, running) = start_fixture(&jwks).await;

    let preflight = client()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/private", running.url),
        )
        .header("origin", "http://example.test")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("request");
    assert_eq!(preflight.status(), 204, "preflight needs no token");
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://example.test"
    );
    assert_eq!(
        preflight.headers()["access-control-allow-methods"],
        "GET,POST"
    );
    assert_eq!(preflight.headers()["access-control-max-age"], "600");

    let foreign = client()
        .get(format!("{}/v1/public", running.url))
        .header("origin", "http://evil.test")
        .send()
        .await
        .expect("request");
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_eq!(running.runtime.invocation_count("EchoFunction"), 1);
    running.stop().await;
}

/// Sends `head` (a request line and headers, each ending in CRLF) over a plain TCP
/// connection and reads the whole answer: reqwest refuses to send a URI as long as the
/// ones hyper itself refuses.
async fn raw_exchange(url: &str, head: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(format!("{head}host: {addr}\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tcp.read_to_end(&mut answer),
    )
    .await
    .expect("an answer within 10 s")
    .expect("read");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[tokio::test]
async fn every_answer_the_gateway_gives_itself_is_a_json_message() {
    // given
    let jwks = jwks_server().await;
    let (_stack, running) = start_fixture(&jwks).await;
    let url = &running.url;
    let json_of = |status: u16, head: &str, body: &str| {
        assert!(
            head.contains("content-type: application/json"),
            "{status}: {head}"
        );
        serde_json::from_str::<Value>(body).unwrap_or_else(|e| panic!("{status}: {body}: {e}"))
    };

    // A query string over API Gateway's 10240-byte quota for the request line.
    let long = client()
        .get(format!("{url}/v1/public?q={}", "a".repeat(20_000)))
        .send()
        .await
        .expect("request");
    assert_eq!(long.status(), 414);
    assert_eq!(
        long.json::<Value>().await.expect("json"),
        json!({"message": "Request-URI Too Long"})
    );

    // One so long that hyper refuses it before the gateway sees it (over 64 KiB).
    let (status, head, body) = raw_exchange(
        url,
        &format!("GET /v1/public?q={} HTTP/1.1\r\n", "a".repeat(70_000)),
    )
    .await;
    assert_eq!(status, 414, "{head}");
    assert_eq!(
        json_of(status, &head, &body),
        json!({"message": "Request-URI Too Long"})
    );

    // Headers that take the request over the quota.
    let big_headers = client()
        .get(format!("{url}/v1/public"))
        .header("x-padding", "p".repeat(11_000))
        .send()
        .await
        .expect("request");
    assert_eq!(big_headers.status(), 431);
    assert_eq!(
        big_headers.json::<Value>().await.expect("json"),
        json!({"message": "Request Header Fields Too Large"})
    );

    // More headers than hyper parses.
    let many: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    let (status, head, body) =
        raw_exchange(url, &format!("GET /v1/public HTTP/1.1\r\n{many}")).await;
    assert_eq!(status, 431, "{head}");
    assert_eq!(
        json_of(status, &head, &body),
        json!({"message": "Request Header Fields Too Large"})
    );

    // A request line that is not HTTP.
    let (status, head, body) = raw_exchange(url, "GET /v1/public\tHTTP/1.1 nonsense\r\n").await;
    assert_eq!(status, 400, "{head}");
    assert_eq!(
        json_of(status, &head, &body),
        json!({"message": "Bad Request"})
    );

    // A body over the 10 MB payload quota, on an open route.
    let too_big = client()
        .get(format!("{url}/v1/public"))
        .body(vec![b'x'; 10 * 1024 * 1024 + 1])
        .send()
        .await
        .expect("request");
    assert_eq!(too_big.status(), 413);
    assert_eq!(
        too_big.json::<Value>().await.expect("json"),
        json!({"message": "Request Entity Too Large"})
    );

    // No route.
    let missing = client()
        .get(format!("{url}/v1/nowhere"))
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.expect("json"),
        json!({"message": "Not Found"})
    );

    // then none of them reached the function, and the gateway still serves
    assert_eq!(running.runtime.invocation_count("EchoFunction"), 0);
    let fine = client()
        .get(format!("{url}/v1/public"))
        .send()
        .await
        .expect("request");
    assert_eq!(fine.status(), 200);
    running.stop().await;
}

#[tokio::test]
async fn two_authorization_headers_are_one_malformed_token_and_a_401() {
    // given two valid tokens
    let jwks = jwks_server().await;
    let (_stack, running) = start_fixture(&jwks).await;
    let token = sign(&id_claims());

    // when both are sent, each in its own Authorization header
    for second in [token.clone(), sign(&id_claims())] {
        let resp = client()
            .post(format!("{}/v1/private", running.url))
            .header("authorization", format!("Bearer {token}"))
            .header("authorization", format!("Bearer {second}"))
            .send()
            .await
            .expect("request");

        // then API Gateway reads them joined with a comma: not a token at all
        assert_eq!(resp.status(), 401);
        assert_eq!(
            resp.json::<Value>().await.expect("json"),
            json!({"message": "Unauthorized"})
        );
    }
    assert_eq!(running.runtime.invocation_count("EchoFunction"), 0);
    running.stop().await;
}

#[tokio::test]
async fn repeated_headers_and_query_parameters_reach_the_function_joined_with_commas() {
    let jwks = jwks_server().await;
    let (_stack, running) = start_fixture(&jwks).await;

    let resp = client()
        .get(format!("{}/v1/public?limit=5&limit=7&one=1", running.url))
        .header("x-twice", "a")
        .header("x-twice", "b")
        .send()
        .await
        .expect("request");

    assert_eq!(resp.status(), 200);
    let event = body_event(resp).await;
    assert_eq!(event["queryStringParameters"]["limit"], "5,7");
    assert_eq!(event["queryStringParameters"]["one"], "1");
    assert_eq!(event["headers"]["x-twice"], "a,b");
    // and the shared reader hands a function the joined value, which no limit parses
    let request: aws_lambda_events::apigw::ApiGatewayV2httpRequest =
        serde_json::from_value(event).expect("a payload 2.0 event");
    assert_eq!(
        encache_shared::http::query_param(&request, "limit").as_deref(),
        Some("5,7")
    );
    running.stop().await;
}
