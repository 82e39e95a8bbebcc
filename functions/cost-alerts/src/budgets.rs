//! The Budgets API: live details for one budget (enrichment) and every budget (digest).

use std::time::Duration;

use anyhow::Context;
use aws_sdk_budgets::Client;
use aws_sdk_budgets::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_budgets::primitives::{DateTime, DateTimeFormat};
use aws_sdk_budgets::types::{Budget, Notification, Spend};

use crate::alert::{Money, parse_decimal};

/// What the Budgets API says about one budget right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetDetails {
    pub name: String,
    pub limit: Option<Money>,
    pub actual: Option<Money>,
    pub forecast: Option<Money>,
    /// `DAILY`, `MONTHLY`, `QUARTERLY`, `ANNUALLY`.
    pub time_unit: String,
    /// `2026-11-01 → 2087-06-15` (dates only).
    pub period: Option<String>,
    /// `ACTUAL > 80%`, `FORECASTED > 100%`, ...
    pub thresholds: Vec<String>,
}

/// Enrichment never blocks an alert: it either has the details or says why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrichment {
    Details(BudgetDetails),
    Unavailable(String),
}

/// A Budgets client signed for us-east-1: the API has one global endpoint.
pub fn client(sdk: &aws_config::SdkConfig) -> Client {
    let config = aws_sdk_budgets::config::Builder::from(sdk)
        .region(aws_sdk_budgets::config::Region::new("us-east-1"))
        .build();
    Client::from_conf(config)
}

/// DescribeBudget + DescribeNotificationsForBudget, concurrently and both within `limit`.
/// A failed DescribeBudget ends the wait at once; missing thresholds only drop a field.
pub async fn enrich(client: &Client, account_id: &str, name: &str, limit: Duration) -> Enrichment {
    let deadline = tokio::time::Instant::now() + limit;
    let budget = async {
        match tokio::time::timeout_at(
            deadline,
            client
                .describe_budget()
                .account_id(account_id)
                .budget_name(name)
                .send(),
        )
        .await
        {
            Err(_) => Err(format!(
                "the Budgets API did not answer within {} ms",
                limit.as_millis()
            )),
            Ok(Err(e)) => {
                tracing::warn!(
                    budget = %name,
                    error = %sdk_error(&e),
                    "DescribeBudget failed"
                );
                Err(match e.code() {
                    Some(code) => format!("DescribeBudget failed: {code}"),
                    None => "DescribeBudget failed".to_owned(),
                })
            }
            Ok(Ok(out)) => out
                .budget
                .ok_or_else(|| "DescribeBudget returned no budget".to_owned()),
        }
    };
    let thresholds = async {
        let call = client
            .describe_notifications_for_budget()
            .account_id(account_id)
            .budget_name(name)
            .send();
        match tokio::time::timeout_at(deadline, call).await {
            Ok(Ok(out)) => Ok(Some(out.notifications().iter().map(threshold).collect())),
            // Thresholds are a nicety; the spend figures are still worth sending.
            Ok(Err(e)) => {
                tracing::warn!(
                    budget = %name,
                    error = %sdk_error(&e),
                    "DescribeNotificationsForBudget failed"
                );
                Ok(None)
            }
            Err(_) => Ok(None),
        }
    };
    match tokio::try_join!(budget, thresholds) {
        Ok((budget, thresholds)) => {
            let mut details = details_of(&budget);
            details.thresholds = thresholds.unwrap_or_default();
            Enrichment::Details(details)
        }
        Err(why) => {
            tracing::warn!(budget = %name, reason = %why, "sending the alert without live budget details");
            Enrichment::Unavailable(why)
        }
    }
}

/// Every budget of the account (DescribeBudgets, all pages).
pub async fn all_budgets(client: &Client, account_id: &str) -> anyhow::Result<Vec<BudgetDetails>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .describe_budgets()
            .account_id(account_id)
            .max_results(100)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(sdk_error(&e)))
            .context("DescribeBudgets failed")?;
        out.extend(page.budgets().iter().map(details_of));
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => break,
        }
    }
    Ok(out)
}

/// `Code: message` for a service error (the full context, raw response and all, otherwise).
fn sdk_error<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => DisplayErrorContext(e).to_string(),
    }
}

fn money(spend: Option<&Spend>) -> Option<Money> {
    let spend = spend?;
    Some(Money::new(parse_decimal(spend.amount())?, spend.unit()))
}

fn date(dt: Option<&DateTime>) -> Option<String> {
    let text = dt?.fmt(DateTimeFormat::DateTime).ok()?;
    Some(text.chars().take(10).collect())
}

fn details_of(b: &Budget) -> BudgetDetails {
    let spend = b.calculated_spend();
    let period = b.time_period().and_then(|p| {
        let start = date(p.start())?;
        Some(match date(p.end()) {
            Some(end) => format!("{start} → {end}"),
            None => format!("from {start}"),
        })
    });
    BudgetDetails {
        name: b.budget_name().to_owned(),
        limit: money(b.budget_limit()),
        actual: money(spend.and_then(|s| s.actual_spend())),
        forecast: money(spend.and_then(|s| s.forecasted_spend())),
        time_unit: b.time_unit().as_str().to_owned(),
        period,
        thresholds: Vec::new(),
    }
}

fn threshold(n: &Notification) -> String {
    let unit = match n.threshold_type().map(|t| t.as_str()) {
        Some("ABSOLUTE_VALUE") => "",
        _ => "%",
    };
    let op = match n.comparison_operator().as_str() {
        "GREATER_THAN" => ">",
        "LESS_THAN" => "<",
        "EQUAL_TO" => "=",
        other => other,
    };
    format!(
        "{} {op} {}{unit}",
        n.notification_type().as_str(),
        n.threshold()
    )
}
