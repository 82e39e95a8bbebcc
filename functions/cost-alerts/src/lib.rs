//! The alert forwarder: AWS Budgets and Cost Anomaly Detection alerts and CloudWatch
//! alarm state changes (via SNS), and a daily digest (via an EventBridge schedule), posted
//! to a Discord webhook.
//!
//! One binary takes both event shapes. Everything that can fail (parsing, enrichment,
//! the webhook secret, building the embed) happens before the post; after a successful
//! post only infallible bookkeeping runs, so an alert is never reported failed (and
//! retried) once Discord has it.
//!
//! Rooms: [`settings`], [`error`], [`store`] (the idempotency record of each delivery, in
//! DynamoDB), and [`Deps`] + [`handle`] here; the domain: [`alert`] (what a cost message
//! says), [`alarm`] (what an alarm notification says), [`budgets`] (the Budgets API),
//! [`render`] and [`embed`] (the Discord embed within its limits), [`discord`] (posting,
//! rate limits, retries). The webhook URL is read through the shared SSM secret cache.
//!
//! At least once without duplicates: a delivery is claimed in the idempotency table
//! before its post and marked completed after, so a message SNS or Lambda redelivers to
//! any container is posted once. A container also remembers what it delivered, which
//! spares the table a call on a warm redelivery.

pub mod alarm;
pub mod alert;
pub mod budgets;
pub mod discord;
pub mod embed;
pub mod error;
pub mod render;
pub mod settings;
pub mod store;

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sns::{SnsEvent, SnsRecord};
use encache_shared::aws::{Lazy, SecretCache};
use encache_shared::config::{Env, ProcessEnv};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::Instrument;

use crate::alert::{CostMessage, account_from_arn};
use crate::budgets::Enrichment;
use crate::discord::{DeliveryError, Discord};
use crate::embed::WebhookMessage;
pub use crate::error::ForwardError;
use crate::render::Origin;
pub use crate::settings::Settings;
use crate::store::{Claim, Store};

/// How many delivered message ids a container remembers.
const REMEMBERED: usize = 10_000;

/// Everything built once per container: settings, clients, the cached webhook secret,
/// the Discord rate-limit state, the idempotency table and the ids already delivered.
pub struct Deps {
    pub settings: Settings,
    secrets: SecretCache,
    budgets: Lazy<aws_sdk_budgets::Client>,
    discord: Discord,
    store: Store,
    delivered: Mutex<Delivered>,
}

#[derive(Default)]
struct Delivered {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Delivered {
    fn insert(&mut self, id: String) {
        if self.ids.insert(id.clone()) {
            self.order.push_back(id);
            while self.order.len() > REMEMBERED {
                if let Some(old) = self.order.pop_front() {
                    self.ids.remove(&old);
                }
            }
        }
    }
}

impl Deps {
    /// The container's dependencies from the process environment and the AWS SDK config.
    pub async fn from_env() -> anyhow::Result<Self> {
        let settings = Settings::from_env(&Env::new(&ProcessEnv))?;
        // The SDK clients and the webhook's HTTPS client are built on first use
        // (shared::aws, discord::Discord).
        Self::new(
            settings,
            SecretCache::lazy(),
            Lazy::new(budgets::client),
            Lazy::new(aws_sdk_dynamodb::Client::new),
        )
    }

    pub fn new(
        settings: Settings,
        secrets: SecretCache,
        budgets: impl Into<Lazy<aws_sdk_budgets::Client>>,
        dynamodb: impl Into<Lazy<aws_sdk_dynamodb::Client>>,
    ) -> anyhow::Result<Self> {
        let discord = Discord::new(settings.retry);
        let store = Store::new(dynamodb, settings.idempotency.clone());
        Ok(Self {
            settings,
            secrets,
            budgets: budgets.into(),
            discord,
            store,
            delivered: Mutex::new(Delivered::default()),
        })
    }

    async fn already_delivered(&self, id: &str) -> bool {
        self.delivered.lock().await.ids.contains(id)
    }

    /// The webhook URL, from the container's secret cache.
    async fn webhook(&self) -> Result<encache_shared::config::Secret<String>, ForwardError> {
        self.secrets
            .get(&self.settings.webhook_parameter)
            .await
            .map_err(|e| ForwardError::WebhookSecret(format!("{e:#}")))
    }

    /// Posts one message unless `id` was already delivered (by this container, or by any
    /// according to the idempotency table).
    async fn deliver(
        &self,
        id: &str,
        message: &WebhookMessage,
        deadline: Instant,
    ) -> Result<bool, ForwardError> {
        if self.already_delivered(id).await {
            tracing::info!(message_id = %id, "already delivered by this container; skipped");
            return Ok(false);
        }
        match self.store.claim(id).await? {
            Claim::Claimed => {}
            Claim::Completed => {
                self.delivered.lock().await.insert(id.to_owned());
                tracing::info!(message_id = %id, "already delivered (idempotency record); skipped");
                return Ok(false);
            }
            Claim::InProgress => return Err(ForwardError::InProgress(id.to_owned())),
        }
        if let Err(e) = self.post(message, deadline).await {
            // Nothing was posted: give the claim up so Lambda's retry can post at once.
            if let Err(release) = self.store.release(id).await {
                tracing::warn!(message_id = %id, error = %release,
                    "claim not released; a retry waits for it to expire");
            }
            return Err(e);
        }
        // Past this point nothing may fail: Discord has the message.
        if let Err(e) = self.store.complete(id).await {
            tracing::error!(message_id = %id, error = %e,
                "delivered, but the idempotency record stays in progress until it expires");
        }
        self.delivered.lock().await.insert(id.to_owned());
        tracing::info!(message_id = %id, "delivered to Discord");
        let kind = id
            .split(':')
            .next()
            .filter(|k| *k == "alarm" || *k == "digest")
            .unwrap_or("cost");
        encache_shared::metrics::count("alerts_forwarded", 1, &[("kind", kind)]);
        Ok(true)
    }

    /// One post to the webhook, refreshing a webhook URL Discord says is gone.
    async fn post(&self, message: &WebhookMessage, deadline: Instant) -> Result<(), ForwardError> {
        let webhook = self.webhook().await?;
        match self.discord.post(&webhook, message, deadline).await {
            // The cached URL is dead. An operator who replaced it in SSM fixes this
            // container too: read it again and post once more if it changed.
            Err(gone @ DeliveryError::WebhookGone { .. }) => {
                self.secrets.forget(&self.settings.webhook_parameter).await;
                let fresh = self.webhook().await?;
                if fresh == webhook {
                    return Err(gone.into());
                }
                tracing::info!("the webhook parameter changed; posting to the new one");
                self.discord.post(&fresh, message, deadline).await?;
            }
            other => other?,
        }
        Ok(())
    }
}

/// The Lambda deadline as a monotonic instant (30 s from now when the runtime gave none).
fn deadline_of(event_deadline_ms: u64) -> Instant {
    if event_deadline_ms == 0 {
        return Instant::now() + Duration::from_secs(30);
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Instant::now() + Duration::from_millis(event_deadline_ms.saturating_sub(now_ms))
}

/// The handler: SNS cost alerts or the scheduled digest, told apart by shape.
pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Value, ForwardError> {
    let deadline = deadline_of(event.context.deadline);
    let payload = event.payload;
    if payload.get("Records").is_some() {
        let sns: SnsEvent = serde_json::from_value(payload)
            .map_err(|e| ForwardError::UnknownEvent(format!("malformed SNS event: {e}")))?;
        let mut posted = 0;
        for record in &sns.records {
            let span = tracing::info_span!("sns_record", message_id = %record.sns.message_id);
            if forward_alert(deps, record, deadline)
                .instrument(span)
                .await?
            {
                posted += 1;
            }
        }
        return Ok(json!({ "records": sns.records.len(), "posted": posted }));
    }
    if payload.get("detail-type").is_some() {
        let scheduled: EventBridgeEvent<Value> = serde_json::from_value(payload)
            .map_err(|e| ForwardError::UnknownEvent(format!("malformed scheduled event: {e}")))?;
        let posted = post_digest(deps, &scheduled, deadline).await?;
        return Ok(json!({ "digest": true, "posted": posted }));
    }
    let keys: Vec<String> = payload
        .as_object()
        .map(|o| o.keys().take(10).cloned().collect())
        .unwrap_or_default();
    tracing::error!(?keys, "unrecognised event shape");
    Err(ForwardError::UnknownEvent(format!(
        "top-level keys {keys:?}"
    )))
}

/// One SNS cost message → one embed. Returns whether it was posted (false if it was
/// already delivered, by this container or another).
pub async fn forward_alert(
    deps: &Deps,
    record: &SnsRecord,
    deadline: Instant,
) -> Result<bool, ForwardError> {
    let sns = &record.sns;
    if deps.already_delivered(&sns.message_id).await {
        tracing::info!(message_id = %sns.message_id, "already delivered by this container; skipped");
        return Ok(false);
    }
    let message = CostMessage::classify(sns.subject.as_deref(), &sns.message);
    // An alarm state change is one delivery whatever SNS message carries it.
    let delivery_id = match &message {
        CostMessage::Alarm(change) => change.dedupe_key(),
        _ => sns.message_id.clone(),
    };
    let topic_account = account_from_arn(&sns.topic_arn);
    let mut origin = Origin {
        message_id: sns.message_id.clone(),
        account_id: None,
        timestamp: Some(sns.timestamp.to_rfc3339()),
    };
    let embed = match &message {
        CostMessage::Alarm(change) => {
            origin.account_id = change.account_id.clone().or(topic_account);
            tracing::info!(
                kind = "alarm",
                alarm = %change.name,
                state = change.new_state.label(),
                "alarm state change parsed"
            );
            render::alarm_embed(change, &origin)
        }
        CostMessage::Budget(alert) => {
            let account = alert
                .account_id
                .clone()
                .or(topic_account)
                .or_else(|| deps.settings.account_id.clone());
            origin.account_id = account.clone();
            let enrichment = match &account {
                Some(acct) => {
                    budgets::enrich(
                        &deps.budgets,
                        acct,
                        &alert.budget_name,
                        deps.settings.enrichment_timeout,
                    )
                    .await
                }
                None => Enrichment::Unavailable("the account id is unknown".into()),
            };
            tracing::info!(
                kind = "budget",
                alert_type = alert.alert_type.map(|t| t.label()),
                enriched = matches!(enrichment, Enrichment::Details(_)),
                "budget alert parsed"
            );
            render::budget_embed(alert, &enrichment, &origin)
        }
        CostMessage::Anomaly(anomaly) => {
            origin.account_id = anomaly.account_id.clone().or(topic_account);
            tracing::info!(kind = "anomaly", anomaly_id = ?anomaly.anomaly_id, "anomaly alert parsed");
            render::anomaly_embed(anomaly, &origin)
        }
        CostMessage::Unrecognised { subject, text } => {
            origin.account_id = topic_account;
            tracing::warn!(
                kind = "unrecognised",
                subject = ?subject,
                excerpt = %embed::truncate(text, 200),
                "cost message not recognised; forwarding a plain notice"
            );
            render::unrecognised_embed(subject.as_deref(), text, &origin)
        }
    };
    // The role is mentioned for what needs someone: an alarm going off, a cost alert.
    let mention = match &message {
        CostMessage::Alarm(change) if change.new_state != alarm::AlarmState::Alarm => None,
        _ => deps.settings.mention_role_id.as_deref(),
    };
    let message = WebhookMessage::single(embed, mention);
    deps.deliver(&delivery_id, &message, deadline).await
}

/// The daily digest: every budget of the account in one embed.
pub async fn post_digest(
    deps: &Deps,
    event: &EventBridgeEvent<Value>,
    deadline: Instant,
) -> Result<bool, ForwardError> {
    let id = event
        .id
        .clone()
        .map(|id| format!("digest:{id}"))
        .unwrap_or_else(|| {
            format!(
                "digest:{}",
                event.time.map(|t| t.to_rfc3339()).unwrap_or_default()
            )
        });
    if deps.already_delivered(&id).await {
        return Ok(false);
    }
    let account = deps
        .settings
        .account_id
        .clone()
        .or_else(|| event.account.clone())
        .ok_or_else(|| ForwardError::Digest("no account id (set BUDGETS_ACCOUNT_ID)".into()))?;
    let lookup = budgets::all_budgets(&deps.budgets, &account);
    let list = match tokio::time::timeout(deps.settings.enrichment_timeout * 3, lookup).await {
        Ok(Ok(list)) => list,
        Ok(Err(e)) => return Err(ForwardError::Digest(format!("{e:#}"))),
        Err(_) => return Err(ForwardError::Digest("DescribeBudgets timed out".into())),
    };
    let origin = Origin {
        message_id: id.clone(),
        account_id: Some(account),
        timestamp: event.time.map(|t| t.to_rfc3339()),
    };
    let embed = render::digest_embed(&list, &origin);
    tracing::info!(budgets = list.len(), "digest built");
    let message = WebhookMessage::single(embed, None);
    deps.deliver(&id, &message, deadline).await
}
