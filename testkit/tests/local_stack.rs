//! The real `template.yaml` and the real function binaries, run through the local stack
//! (`encache-local`): sign-up through the Cognito triggers, the HTTP API with its JWT
//! authorizer, the S3 upload chain and the conversation feed, end to end. Each test gets
//! its own database, Cognito pool, upload bucket (and queue) and API port.
//!
//! Needs the dev services (`eval "$(scripts/dev-services.sh env)"`) and the functions'
//! binaries next to this test's executable (`cargo nextest run --workspace` builds them).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use encache_local::emulators::cognito::{self, Pool};
use encache_local::emulators::gateway::GatewaySettings;
use encache_local::emulators::{self, Running, StartOptions};
use encache_local::stack::{Config, Stack};
use encache_testkit::{TestDb, profile_dir, repo_root};
use serde_json::{Value, json};

const PASSWORD: &str = "Passw0rd!long";
const BLOCKED_DOMAIN: &str = "blocked.example";

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// The function binaries must be built. `cargo nextest run --workspace` builds them (every
/// function package has integration tests), but `-p encache-testkit` alone does not, so a
/// missing one is built here with the template's own build step (`encache-local build`).
fn ensure_binaries(stack: &Stack) {
    let missing = |stack: &Stack| -> Vec<String> {
        stack
            .template
            .binaries()
            .into_iter()
            .filter(|b| !stack.config.bin_dir.join(b).exists())
            .collect()
    };
    if missing(stack).is_empty() {
        return;
    }
    encache_local::commands::build::run(stack, false)
        .expect("building the template's function binaries");
    let still = missing(stack);
    assert!(
        still.is_empty(),
        "binaries {still:?} are not in {} after the build (is CARGO_TARGET_DIR the target \
         dir this test was built in?)",
        stack.config.bin_dir.display()
    );
}

/// The whole stack of `template.yaml`, running in-process on a free port.
struct LocalStack {
    db: TestDb,
    stack: Stack,
    running: Running,
    pool: Pool,
    bucket: String,
    scratch: PathBuf,
    http: reqwest::Client,
}

impl LocalStack {
    /// Given a fresh database, Cognito pool and app client, upload bucket and cursor key,
    /// with sign-ups at `blocked.example` refused.
    async fn start() -> Self {
        std::env::var("AWS_ENDPOINT_URL").expect(
            "AWS_ENDPOINT_URL is not set: run with the dev services \
             (eval \"$(scripts/dev-services.sh env)\")",
        );
        let db = TestDb::new().await;
        let sdk = encache_shared::aws::sdk_config().await;
        let (pool_id, client_id) = cognito::create_pool(&sdk, &unique("enc-e2e-"))
            .await
            .expect("a Cognito pool in the emulator");

        // `Env` names the upload bucket (encache-<env>-uploads-...): unique per test.
        let env_name = unique("e2e");
        let scratch = std::env::temp_dir().join(unique("encache-local-stack-"));
        std::fs::create_dir_all(&scratch).expect("a scratch folder");
        let mut parameters = json!({
                "Env": env_name,
                "CognitoUserPoolId": pool_id,
                "CognitoAppClientId": client_id,
                "BlockedEmailDomains": BLOCKED_DOMAIN,
                "AutoConfirmUsers": "true",
                "AutoVerifyEmail": "true",
                "CURSOR_SIGNING_KEY": uuid::Uuid::new_v4().simple().to_string().repeat(2),
                // The data key: an alias of this test's own, created in the emulator.
                "DataKeyArn": format!("alias/encache-{env_name}-data"),
        });
        for (k, v) in encache_local::commands::setup::database_parameters(&db.url) {
            parameters[k] = json!(v);
        }
        let mut config = Config::for_root(&repo_root(), profile_dir()).env_files_in(&scratch);
        config.stack_name = format!("encache-{env_name}");
        std::fs::write(
            &config.env_vars,
            json!({ "Parameters": parameters }).to_string(),
        )
        .expect("writing the env file");
        let stack = Stack::load(config).expect("template.yaml loads with the local values");
        ensure_binaries(&stack);
        let bucket = stack
            .resolver()
            .physical_name("UploadBucket")
            .expect("the upload bucket's local name");

        // The secrets the functions would read from SSM are given as values above
        // (DATABASE_URL, CURSOR_SIGNING_KEY), so nothing is written to the emulator's
        // shared /encache/dev/ parameters. Event sources provision the bucket, its
        // notification queue and the poller that invokes UploadCompleteFunction.
        let running = emulators::start(
            &stack,
            &StartOptions {
                addr: "127.0.0.1:0".into(),
                gateway: GatewaySettings::default(),
                event_sources: true,
            },
        )
        .await
        .expect("the local stack starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("an HTTP client");
        Self {
            db,
            stack,
            running,
            pool: Pool {
                user_pool_id: pool_id,
                client_id,
            },
            bucket,
            scratch,
            http,
        }
    }

    /// Signs `email` up as Cognito would (the triggers run) and returns its ID token.
    async fn sign_up(&self, email: &str) -> String {
        cognito::create(&self.stack, &self.pool, email, PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("signing up {email}: {e:#}"));
        cognito::token(&self.pool, email, PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("a token for {email}: {e:#}"))
    }

    async fn users_rows(&self, email: &str) -> Vec<(String, String)> {
        sqlx::query_as("SELECT cognito_sub, email FROM users WHERE email = $1")
            .bind(email)
            .fetch_all(&self.db.pool)
            .await
            .expect("reading users")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.url)
    }

    /// `(status, JSON body)` of one API call; `token` as a bearer token when given.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method.clone(), self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("a response body");
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path} → {status}: not JSON ({e}): {text}"));
        (status, json)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }

    async fn stop(self) {
        self.running.stop().await;
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

#[tokio::test]
async fn a_blocked_domain_is_refused_at_sign_up_and_an_allowed_user_reaches_the_api_with_a_token() {
    let local = LocalStack::start().await;

    // when someone signs up at the blocked domain
    let blocked = format!("mallory@{BLOCKED_DOMAIN}");
    let refused = cognito::create(&local.stack, &local.pool, &blocked, PASSWORD)
        .await
        .expect_err("a sign-up at a blocked domain is refused");
    // then Cognito's message carries the function's reason, and nothing was created
    assert_eq!(
        refused.to_string(),
        format!(
            "PreSignUp failed with error email addresses at {BLOCKED_DOMAIN} cannot be used to sign up."
        )
    );
    let sdk = encache_shared::aws::sdk_config().await;
    let idp = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    assert!(
        idp.admin_get_user()
            .user_pool_id(&local.pool.user_pool_id)
            .username(&blocked)
            .send()
            .await
            .is_err(),
        "the refused user is not in the pool"
    );
    assert!(local.users_rows(&blocked).await.is_empty(), "no users row");

    // when someone signs up at an allowed domain
    let email = "ada@example.com";
    let token = local.sign_up(email).await;
    // then post-confirmation wrote one users row, keyed by the pool's sub
    let user = idp
        .admin_get_user()
        .user_pool_id(&local.pool.user_pool_id)
        .username(email)
        .send()
        .await
        .expect("the user is in the pool");
    let sub = user
        .user_attributes()
        .iter()
        .find(|a| a.name() == "sub")
        .and_then(|a| a.value())
        .expect("the user has a sub")
        .to_owned();
    assert_eq!(local.users_rows(email).await, vec![(sub, email.to_owned())]);

    // and the token opens GET /v1/me, while no token is 401 without reaching the function
    let (status, me) = local.get("/v1/me", Some(&token)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["email"], email, "{me}");
    let (status, denied) = local.get("/v1/me", None).await;
    assert_eq!(status, 401);
    assert_eq!(denied, json!({"message": "Unauthorized"}));
    assert_eq!(local.running.runtime.invocation_count("MeFunction"), 1);

    // and health needs no token
    let (status, health) = local.get("/v1/health", None).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    local.stop().await;
}

#[tokio::test]
async fn an_upload_put_to_its_presigned_url_becomes_a_ready_memory_with_no_manual_step() {
    // given a signed-up user
    let local = LocalStack::start().await;
    let token = local.sign_up("grace@example.com").await;

    // when the app asks for an upload
    let bytes = b"a memory worth keeping\n".to_vec();
    let (status, ticket) = local
        .post(
            "/v1/memories/uploads",
            &token,
            json!({"content_type": "text/plain", "size_bytes": bytes.len(),
                   "file_name": "first note.txt", "title": "First note"}),
        )
        .await;
    assert_eq!(status, 201, "{ticket}");
    let memory_id = ticket["memory_id"].as_str().expect("memory_id").to_owned();
    let upload_url = ticket["upload_url"].as_str().expect("upload_url");
    assert_eq!(ticket["method"], "PUT", "{ticket}");
    assert!(
        upload_url.contains(&format!("/{}/users/", local.bucket)),
        "the object goes to this stack's bucket under the users prefix: {upload_url}"
    );

    // and PUTs the bytes with the signed headers (reqwest sets Content-Length from the body)
    let headers = ticket["headers"].as_object().expect("headers");
    assert_eq!(
        headers.get("content-length").and_then(Value::as_str),
        Some(bytes.len().to_string().as_str()),
        "{ticket}"
    );
    let mut put = local.http.put(upload_url).body(bytes.clone());
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case("content-length") {
            put = put.header(name.as_str(), value.as_str().expect("a header value"));
        }
    }
    // The emulator hangs on a PUT without Content-Type: the ticket must carry one.
    assert!(
        headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("content-type")),
        "{ticket}"
    );
    let put = put.send().await.expect("the PUT to the presigned URL");
    assert!(put.status().is_success(), "PUT → {}", put.status());

    // then the bucket's notification reaches UploadCompleteFunction, and the memory shows
    // as ready in the feed
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, feed) = local.get("/v1/memories", Some(&token)).await;
        assert_eq!(status, 200, "{feed}");
        let items = feed["items"].as_array().expect("items");
        if let Some(m) = items.iter().find(|m| m["id"] == memory_id.as_str()) {
            assert_eq!(m["status"], "ready", "{m}");
            assert_eq!(m["size_bytes"], bytes.len(), "{m}");
            assert_eq!(m["title"], "First note", "{m}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "memory {memory_id} was not ready in GET /v1/memories within 20 s \
             (UploadCompleteFunction invocations: {}); last feed: {feed}",
            local
                .running
                .runtime
                .invocation_count("UploadCompleteFunction")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // and the object is encrypted as in a deploy: SSE-KMS under the data key, bucket key on
    let object_key = upload_url
        .split_once(&format!("/{}/", local.bucket))
        .and_then(|(_, rest)| rest.split('?').next())
        .expect("the object key in the upload URL");
    let sdk = encache_shared::aws::sdk_config().await;
    let head = encache_shared::aws::s3_client(&sdk)
        .head_object()
        .bucket(&local.bucket)
        .key(object_key)
        .send()
        .await
        .expect("HeadObject of the uploaded object");
    assert_eq!(
        head.server_side_encryption().map(|e| e.as_str()),
        Some("aws:kms"),
        "{head:?}"
    );
    let data_key = local
        .stack
        .parameters
        .get("DataKeyArn")
        .expect("DataKeyArn");
    assert_eq!(head.ssekms_key_id(), Some(data_key.as_str()), "{head:?}");
    assert_eq!(head.bucket_key_enabled(), Some(true), "{head:?}");

    // and its detail has a download URL that serves the bytes
    let (status, detail) = local
        .get(&format!("/v1/memories/{memory_id}"), Some(&token))
        .await;
    assert_eq!(status, 200, "{detail}");
    let download = detail["download_url"].as_str().expect("a download_url");
    let got = local
        .http
        .get(download)
        .send()
        .await
        .expect("GET the download URL");
    assert!(got.status().is_success(), "download → {}", got.status());
    assert_eq!(got.bytes().await.expect("bytes").as_ref(), bytes.as_slice());
    local.stop().await;
}

#[tokio::test]
async fn a_new_message_moves_its_conversation_first_and_its_messages_page_back_by_cursor() {
    // given two users, and two conversations of the first, the older one created first
    let local = LocalStack::start().await;
    let token = local.sign_up("ada@example.com").await;
    let other = local.sign_up("bob@example.com").await;
    let mut ids = Vec::new();
    for title in ["Older", "Newer"] {
        let (status, conv) = local
            .post("/v1/conversations", &token, json!({"title": title}))
            .await;
        assert_eq!(status, 201, "{conv}");
        ids.push(conv["id"].as_str().expect("id").to_owned());
    }
    let older = &ids[0];
    let messages = format!("/v1/conversations/{older}/messages");

    // when two messages are posted to the older conversation
    for text in ["hello there", "the latest word"] {
        let (status, msg) = local
            .post(&messages, &token, json!({"role": "user", "text": text}))
            .await;
        assert_eq!(status, 201, "{msg}");
        assert_eq!(msg["text"], text, "{msg}");
    }

    // then it leads the feed, with the last message as its preview
    let (status, feed) = local.get("/v1/conversations", Some(&token)).await;
    assert_eq!(status, 200, "{feed}");
    let items = feed["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{feed}");
    assert_eq!(items[0]["id"], older.as_str(), "{feed}");
    assert_eq!(
        items[0]["last_message_preview"], "the latest word",
        "{feed}"
    );
    assert_eq!(items[0]["message_count"], 2, "{feed}");

    // and its messages page back, newest first, one at a time through next_cursor
    let (status, first) = local
        .get(&format!("{messages}?limit=1"), Some(&token))
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["items"].as_array().map(Vec::len), Some(1), "{first}");
    assert_eq!(first["items"][0]["text"], "the latest word", "{first}");
    let cursor = first["next_cursor"].as_str().expect("a next_cursor");
    let (status, second) = local
        .get(&format!("{messages}?limit=1&cursor={cursor}"), Some(&token))
        .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        second["items"].as_array().map(Vec::len),
        Some(1),
        "{second}"
    );
    assert_eq!(second["items"][0]["text"], "hello there", "{second}");
    assert_eq!(second["next_cursor"], Value::Null, "the end: {second}");

    // and another user's token finds no such conversation
    let (status, body) = local.get(&messages, Some(&other)).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = local
        .post(&messages, &other, json!({"role": "user", "text": "hi"}))
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, feed) = local.get("/v1/conversations", Some(&other)).await;
    assert_eq!(status, 200, "{feed}");
    assert_eq!(feed["items"], json!([]), "{feed}");
    local.stop().await;
}

#[tokio::test]
async fn hostile_input_through_the_real_stack_is_a_json_4xx_and_never_poisons_the_feed() {
    // given a signed-up user
    let local = LocalStack::start().await;
    let token = local.sign_up("mallory@example.com").await;

    // when an upload declares a captured_at in year 0 with an offset (year -1 in UTC)
    let (status, body) = local
        .post(
            "/v1/memories/uploads",
            &token,
            json!({"content_type": "text/plain", "size_bytes": 3,
                   "captured_at": "0000-01-01T00:00:00+01:00"}),
        )
        .await;
    // then it is refused, and the pending feed stays up
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("captured_at:"),
        "{body}"
    );
    let (status, feed) = local.get("/v1/memories?status=pending", Some(&token)).await;
    assert_eq!(status, 200, "{feed}");

    // and a limit given twice is one malformed value, as API Gateway joins it
    let (status, body) = local
        .get("/v1/memories?limit=5&limit=7", Some(&token))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );

    // and a body with data after the object is a 400, not a second write
    let resp = local
        .http
        .post(local.url("/v1/memories/uploads"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(r#"{"content_type":"text/plain","size_bytes":3}{"content_type":"text/plain","size_bytes":4}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 400);
    let memories: i64 = sqlx::query_scalar("SELECT count(*) FROM memories")
        .fetch_one(&local.db.pool)
        .await
        .expect("counting memories");
    assert_eq!(memories, 0);

    // and two Authorization headers are one malformed token: the gateway's 401
    let resp = local
        .http
        .get(local.url("/v1/me"))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .expect("GET /v1/me");
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.expect("JSON"),
        json!({"message": "Unauthorized"})
    );
    local.stop().await;
}

/// The README's test command run beside a live local stack (sharing its dev services)
/// leaves them running: it stops only services it started itself. One quick step stands
/// in for the whole run (`ENCACHE_TEST_STEPS`); the start and the cleanup are the same.
#[tokio::test]
async fn the_test_command_beside_a_running_stack_leaves_its_database_and_emulator_up() {
    let local = LocalStack::start().await;
    let (status, before) = local.get("/v1/health", None).await;
    assert_eq!(status, 200, "{before}");

    let out = tokio::process::Command::new("bash")
        .arg(repo_root().join("scripts/test.sh"))
        .env("ENCACHE_TEST_STEPS", "moto-recording")
        .output()
        .await
        .expect("running scripts/test.sh");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "scripts/test.sh failed:\n{log}");
    assert!(log.contains("PASS  moto-recording"), "{log}");

    // After the script's cleanup ran: the stack still answers through its database.
    let (status, after) = local.get("/v1/health", None).await;
    assert_eq!(
        status, 200,
        "the stack stopped answering after scripts/test.sh: {after}\n{log}"
    );
    let status = tokio::process::Command::new("bash")
        .arg(repo_root().join("scripts/dev-services.sh"))
        .arg("status")
        .output()
        .await
        .expect("dev-services.sh status");
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        status.contains("postgres: running") && status.contains("moto: running"),
        "{status}"
    );
    local.stop().await;
}
