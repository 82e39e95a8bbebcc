//! What the cost-alert tests share: the function's `Deps` wired to the emulated SSM and
//! Budgets and the fake Discord of `encache-testkit`, budgets created in the emulator, and
//! real-shaped SNS events.

#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_budgets::types::{
    Budget, BudgetType, CalculatedSpend, ComparisonOperator, Notification, NotificationType,
    NotificationWithSubscribers, Spend, Subscriber, SubscriptionType, ThresholdType, TimeUnit,
};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use encache_cost_alerts::discord::RetryPolicy;
use encache_cost_alerts::store::IdempotencySettings;
use encache_cost_alerts::{Deps, Settings, budgets};
use encache_shared::aws::{SecretCache, sdk_config};
use encache_testkit::sample_event;
use serde_json::Value;

pub use encache_testkit::fake_discord::FakeDiscord;

/// A fresh 12-digit account id, so each test's budgets are its own in the shared emulator.
pub fn new_account() -> String {
    let n = uuid::Uuid::new_v4().as_u64_pair().0 % 900_000_000_000 + 100_000_000_000;
    n.to_string()
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Stores `url` as a SecureString under a fresh name and returns the name.
pub async fn store_webhook(url: &str) -> String {
    let sdk = sdk_config().await;
    let name = format!(
        "/encache/test/cost-alerts/{}/discord-webhook",
        uuid::Uuid::new_v4().simple()
    );
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(&name)
        .value(url)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("storing the webhook URL in the emulated SSM (are the dev services up?)");
    name
}

pub fn settings(webhook_parameter: String) -> Settings {
    Settings {
        webhook_parameter,
        mention_role_id: None,
        enrichment_timeout: Duration::from_millis(1500),
        account_id: None,
        retry: RetryPolicy {
            max_attempts: 4,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(400),
            deadline_margin: Duration::from_millis(200),
            request_timeout: Duration::from_secs(3),
        },
        // A table of its own per test (created by `forwarder`): the sample alarm events
        // share their dedupe keys across tests.
        idempotency: IdempotencySettings {
            table: unique("encache-test-cost-alert-idempotency"),
            record_ttl: Duration::from_secs(3600),
            in_progress_timeout: Duration::from_secs(60),
        },
    }
}

/// Creates the idempotency table in the emulator as the template declares it (key `id`,
/// on demand); a table that exists already is kept.
pub async fn idempotency_table(table: &str) {
    let sdk = sdk_config().await;
    let created = aws_sdk_dynamodb::Client::new(&sdk)
        .create_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    if let Err(e) = created {
        let exists = e
            .as_service_error()
            .is_some_and(|e| e.is_resource_in_use_exception());
        assert!(
            exists,
            "creating the idempotency table in the emulator: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(e)
        );
    }
}

/// The function's dependencies (one "container") talking to the emulator's SSM and Budgets.
pub async fn forwarder(settings: Settings) -> Deps {
    let sdk = sdk_config().await;
    idempotency_table(&settings.idempotency.table).await;
    Deps::new(
        settings,
        SecretCache::from_sdk(&sdk),
        budgets::client(&sdk),
        aws_sdk_dynamodb::Client::new(&sdk),
    )
    .unwrap()
}

/// A forwarder whose Budgets endpoint is `endpoint` (something that fails or hangs).
pub async fn forwarder_with_budgets_at(settings: Settings, endpoint: &str) -> Deps {
    let sdk = sdk_config().await;
    let broken = aws_sdk_budgets::Client::from_conf(
        aws_sdk_budgets::config::Builder::from(&sdk)
            .endpoint_url(endpoint)
            .region(aws_sdk_budgets::config::Region::new("us-east-1"))
            .build(),
    );
    idempotency_table(&settings.idempotency.table).await;
    Deps::new(
        settings,
        SecretCache::from_sdk(&sdk),
        broken,
        aws_sdk_dynamodb::Client::new(&sdk),
    )
    .unwrap()
}

fn spend(amount: &str) -> Spend {
    Spend::builder().amount(amount).unit("USD").build().unwrap()
}

fn notification(kind: NotificationType, threshold: f64) -> NotificationWithSubscribers {
    NotificationWithSubscribers::builder()
        .notification(
            Notification::builder()
                .notification_type(kind)
                .comparison_operator(ComparisonOperator::GreaterThan)
                .threshold(threshold)
                .threshold_type(ThresholdType::Percentage)
                .build()
                .unwrap(),
        )
        .subscribers(
            Subscriber::builder()
                .subscription_type(SubscriptionType::Email)
                .address("ops@encache.example")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// Creates a cost budget in the emulator with the given limit and spend, and the
/// 50/80/100 % actual + 100 % forecasted notifications.
pub async fn create_budget(
    account: &str,
    name: &str,
    unit: TimeUnit,
    limit: &str,
    actual: &str,
    forecast: &str,
) {
    let sdk = sdk_config().await;
    let client = budgets::client(&sdk);
    let budget = Budget::builder()
        .budget_name(name)
        .budget_type(BudgetType::Cost)
        .time_unit(unit)
        .budget_limit(spend(limit))
        .calculated_spend(
            CalculatedSpend::builder()
                .actual_spend(spend(actual))
                .forecasted_spend(spend(forecast))
                .build(),
        )
        .build()
        .unwrap();
    client
        .create_budget()
        .account_id(account)
        .budget(budget)
        .notifications_with_subscribers(notification(NotificationType::Actual, 50.0))
        .notifications_with_subscribers(notification(NotificationType::Actual, 80.0))
        .notifications_with_subscribers(notification(NotificationType::Actual, 100.0))
        .notifications_with_subscribers(notification(NotificationType::Forecasted, 100.0))
        .send()
        .await
        .expect("creating a budget in the emulator");
}

/// The labelled values of one AWS Budgets notification.
pub struct Notice<'a> {
    pub account: &'a str,
    pub name: &'a str,
    pub alert_type: &'a str,
    pub amount_label: &'a str,
    pub budgeted: &'a str,
    pub threshold: &'a str,
    pub amount: &'a str,
    pub period: &'a str,
}

impl Notice<'_> {
    /// The real-shaped AWS Budgets text, as AWS sends it (CRLF, prose with a different
    /// amount than the labelled line).
    pub fn text(&self) -> String {
        let Notice {
            account,
            name,
            alert_type,
            amount_label,
            budgeted,
            threshold,
            amount,
            period,
        } = self;
        format!(
            "AWS Budget Notification November 21, 2026\r\nAWS Account {account}\r\n\r\nDear AWS Customer,\r\n\r\n\
             You requested that we alert you when the {alert_type} Cost associated with your {name} budget is greater than {threshold} for the current {period}. \
             The {alert_type} Cost associated with this budget is $1.00. You can find additional details below and by accessing the AWS Budgets dashboard [1].\r\n\r\n\
             Budget Name: {name}\r\nBudget Type: Cost\r\nBudgeted Amount: {budgeted}\r\nAlert Type: {alert_type}\r\n\
             Alert Threshold: > {threshold}\r\n{amount_label}: {amount}\r\n\r\n[1] https://console.aws.amazon.com/billing/home#/budgets\r\n"
        )
    }
}

/// The budget sample from `events/` with its message replaced and a fresh message id.
pub fn sns_event(message: &str, subject: Option<&str>) -> Value {
    let mut event: Value = sample_event("cost-alert-budget-sns.json");
    let sns = &mut event["Records"][0]["Sns"];
    sns["Message"] = Value::String(message.to_owned());
    sns["MessageId"] = Value::String(uuid::Uuid::new_v4().to_string());
    sns["Subject"] = subject.map_or(Value::Null, |s| Value::String(s.to_owned()));
    event
}

pub fn message_id(event: &Value) -> String {
    event["Records"][0]["Sns"]["MessageId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The one embed of a posted message.
pub fn embed(message: &Value) -> &Value {
    &message["embeds"][0]
}

pub fn field<'a>(embed: &'a Value, name: &str) -> Option<&'a str> {
    embed["fields"]
        .as_array()?
        .iter()
        .find(|f| f["name"] == name)
        .and_then(|f| f["value"].as_str())
}

/// Log output captured in memory, for asserting what reaches (and never reaches) the logs.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A TCP endpoint that accepts connections and never answers (a hung dependency).
pub async fn silent_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

/// An address where nothing listens.
pub fn closed_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}
