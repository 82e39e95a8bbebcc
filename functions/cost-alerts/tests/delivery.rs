//! Delivery to Discord: rate limits, retries, dead webhooks, deduplication, and a
//! webhook URL that never reaches a log line.

mod support;

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use encache_cost_alerts::{ForwardError, handle};
use encache_shared::error::EventFailure;
use encache_testkit::lambda_event;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use support::*;

fn with_deadline(payload: Value, from_now: Duration) -> LambdaEvent<Value> {
    let mut event = lambda_event(payload);
    event.context.deadline = (SystemTime::now() + from_now)
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    event
}

fn footer_id(message: &Value) -> String {
    embed(message)["footer"]["text"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_burst_of_twenty_alerts_is_all_delivered_once_despite_the_rate_limit() {
    // Given one webhook and four containers handling 20 alerts concurrently (5 each)
    let discord = FakeDiscord::start().await;
    let param = store_webhook(&discord.new_webhook()).await;
    let mut containers = Vec::new();
    for _ in 0..4 {
        containers.push(forwarder(settings(param.clone())).await);
    }
    let events: Vec<Value> = (0..20)
        .map(|i| sns_event(&format!("unknown message {i}"), None))
        .collect();

    // When each container works through its share, one invocation at a time, and SNS
    // then redelivers every message to the same container
    let mut runs = tokio::task::JoinSet::new();
    for (c, deps) in containers.into_iter().enumerate() {
        let mine: Vec<Value> = events.iter().skip(c).step_by(4).cloned().collect();
        runs.spawn(async move {
            let mut results = Vec::new();
            for e in mine.iter().chain(mine.iter()) {
                results.push(handle(&deps, lambda_event(e.clone())).await);
            }
            results
        });
    }
    let results: Vec<_> = runs.join_all().await.into_iter().flatten().collect();

    // Then every invocation succeeded, all 20 arrived exactly once, and the 429s Discord
    // sent were all waited out
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
    let posted = discord.accepted();
    assert_eq!(posted.len(), 20);
    let ids: HashSet<String> = posted.iter().map(footer_id).collect();
    assert_eq!(ids.len(), 20, "no message posted twice");
    assert!(
        discord.rate_limited() > 0,
        "the burst did hit the rate limit"
    );
    assert_eq!(discord.requests(), 20 + discord.rate_limited());
}

#[tokio::test]
async fn a_message_this_container_already_posted_is_not_posted_again() {
    let discord = FakeDiscord::start().await;
    let deps = forwarder(settings(store_webhook(&discord.new_webhook()).await)).await;
    let event = sns_event("hello", None);

    let first = handle(&deps, lambda_event(event.clone())).await.unwrap();
    let second = handle(&deps, lambda_event(event)).await.unwrap();

    assert_eq!(first["posted"], 1);
    assert_eq!(second["posted"], 0);
    assert_eq!(discord.accepted().len(), 1);
}

#[tokio::test]
async fn a_webhook_that_is_gone_is_a_non_retryable_error() {
    let discord = FakeDiscord::start().await;
    let deps = forwarder(settings(store_webhook(&discord.unknown_webhook()).await)).await;

    let err = handle(&deps, lambda_event(sns_event("hello", None)))
        .await
        .unwrap_err();

    assert!(!err.retryable());
    let diagnostic = Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "NotRetryable.WebhookGone");
    assert_eq!(discord.requests(), 1, "a 404 is not retried");
}

#[tokio::test]
async fn a_webhook_replaced_in_ssm_is_used_by_a_container_that_cached_the_dead_one() {
    // Given a container that cached a webhook which is then deleted in Discord
    let discord = FakeDiscord::start().await;
    let param = store_webhook(&discord.unknown_webhook()).await;
    let deps = forwarder(settings(param.clone())).await;
    assert!(
        handle(&deps, lambda_event(sns_event("first", None)))
            .await
            .is_err()
    );

    // When the operator writes a new webhook URL to the parameter
    aws_sdk_ssm::Client::new(&encache_shared::aws::sdk_config().await)
        .put_parameter()
        .name(&param)
        .value(discord.new_webhook())
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();

    // Then the same container's next alert reaches the new webhook
    let out = handle(&deps, lambda_event(sns_event("second", None))).await;
    assert!(out.is_ok(), "{out:?}");
    assert_eq!(discord.accepted().len(), 1);
}

#[tokio::test]
async fn a_rejected_message_is_a_non_retryable_error_carrying_discords_message() {
    let discord = FakeDiscord::start().await;
    let deps = forwarder(settings(store_webhook(&discord.new_webhook()).await)).await;
    discord.fail_next(&[400]);

    let err = handle(&deps, lambda_event(sns_event("hello", None)))
        .await
        .unwrap_err();

    assert!(!err.retryable());
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(
        Diagnostic::from(err).error_type,
        "NotRetryable.DiscordRejected"
    );
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_until_discord_recovers() {
    let discord = FakeDiscord::start().await;
    let deps = forwarder(settings(store_webhook(&discord.new_webhook()).await)).await;
    discord.fail_next(&[500, 502, 503]);

    let out = handle(&deps, lambda_event(sns_event("hello", None)))
        .await
        .unwrap();

    assert_eq!(out["posted"], 1);
    assert_eq!(discord.requests(), 4);
    assert_eq!(discord.accepted().len(), 1);
}

#[tokio::test]
async fn persistent_server_errors_end_in_a_retryable_error_and_the_retry_posts_once() {
    let discord = FakeDiscord::start().await;
    let deps = forwarder(settings(store_webhook(&discord.new_webhook()).await)).await;
    discord.fail_next(&[503, 503, 503, 503]);
    let event = sns_event("hello", None);

    let err = handle(&deps, lambda_event(event.clone()))
        .await
        .unwrap_err();
    assert!(err.retryable(), "{err}");
    assert_eq!(
        Diagnostic::from(err).error_type,
        "Retryable.DiscordServerError"
    );
    assert_eq!(discord.requests(), 4, "bounded attempts");

    // Lambda's asynchronous retry then delivers it, once
    handle(&deps, lambda_event(event)).await.unwrap();
    assert_eq!(discord.accepted().len(), 1);
}

#[tokio::test]
async fn a_network_failure_is_a_retryable_error() {
    let deps = forwarder(settings(
        store_webhook(&format!("{}/api/webhooks/1/t", closed_endpoint())).await,
    ))
    .await;

    let err = handle(&deps, lambda_event(sns_event("hello", None)))
        .await
        .unwrap_err();

    assert!(matches!(err, ForwardError::Delivery(_)));
    assert_eq!(
        Diagnostic::from(err).error_type,
        "Retryable.DiscordUnreachable"
    );
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_time_left_is_a_retryable_error_not_a_timeout() {
    // Given Discord asks for 30 s and the invocation has 3 s left
    let discord = FakeDiscord::start().await;
    let deps = forwarder(settings(store_webhook(&discord.new_webhook()).await)).await;
    discord.fail_next(&[429]);

    let started = std::time::Instant::now();
    let err = handle(
        &deps,
        with_deadline(sns_event("hello", None), Duration::from_secs(3)),
    )
    .await
    .unwrap_err();

    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(err.retryable());
    assert_eq!(
        Diagnostic::from(err).error_type,
        "Retryable.DiscordRateLimited"
    );
    assert!(discord.accepted().is_empty());
}

#[tokio::test]
async fn the_webhook_url_is_read_from_ssm_once_per_container() {
    // Given a container that has posted once
    let discord = FakeDiscord::start().await;
    let param = store_webhook(&discord.new_webhook()).await;
    let deps = forwarder(settings(param.clone())).await;
    handle(&deps, lambda_event(sns_event("one", None)))
        .await
        .unwrap();

    // When the parameter is deleted, the same container still posts (cached value)
    let sdk = encache_shared::aws::sdk_config().await;
    aws_sdk_ssm::Client::new(&sdk)
        .delete_parameter()
        .name(&param)
        .send()
        .await
        .unwrap();
    handle(&deps, lambda_event(sns_event("two", None)))
        .await
        .unwrap();

    assert_eq!(discord.accepted().len(), 2);
}

#[tokio::test]
async fn the_webhook_url_appears_in_no_log_line_and_no_error() {
    // Given every log line of every level captured
    let logs = CapturedLogs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let discord = FakeDiscord::start().await;
    let good = discord.new_webhook();
    let gone = discord.unknown_webhook();
    let unreachable = format!(
        "{}/api/webhooks/2/tok-secret-unreachable",
        closed_endpoint()
    );
    let mut errors = Vec::new();

    // When alerts succeed, hit a rate limit, are rejected, find the webhook gone or Discord down
    let deps = forwarder(settings(store_webhook(&good).await)).await;
    handle(&deps, lambda_event(sns_event("fine", None)))
        .await
        .unwrap();
    discord.fail_next(&[500, 400]);
    errors.push(
        handle(&deps, lambda_event(sns_event("rejected", None)))
            .await
            .unwrap_err(),
    );
    discord.fail_next(&[429]);
    errors.push(
        handle(
            &deps,
            with_deadline(sns_event("limited", None), Duration::from_secs(2)),
        )
        .await
        .unwrap_err(),
    );
    for url in [&gone, &unreachable] {
        let deps = forwarder(settings(store_webhook(url).await)).await;
        errors.push(
            handle(&deps, lambda_event(sns_event("x", None)))
                .await
                .unwrap_err(),
        );
    }

    // Then no line and no error message holds any webhook URL or its token
    let text = logs.text();
    assert!(
        text.contains("Discord webhook is gone"),
        "logs were captured: {text}"
    );
    assert!(text.contains("Discord rejected the message"), "{text}");
    assert!(text.contains("Discord unreachable"), "{text}");
    let errors: Vec<String> = errors
        .into_iter()
        .map(|e| {
            let d = Diagnostic::from(e);
            format!("{} {}", d.error_type, d.error_message)
        })
        .collect();
    for url in [&good, &gone, &unreachable] {
        let token = url.rsplit('/').next().unwrap();
        for line in text.lines().chain(errors.iter().map(String::as_str)) {
            assert!(!line.contains(url.as_str()), "URL leaked: {line}");
            assert!(!line.contains(token), "token leaked: {line}");
        }
    }
}
