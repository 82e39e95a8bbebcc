//! Cost messages, alarm state changes and budget summaries as Discord embeds.

use rust_decimal::Decimal;

use crate::alarm::{AlarmChange, AlarmState};
use crate::alert::{AlertType, AnomalyAlert, BudgetAlert, display_amount, share_percent};
use crate::budgets::{BudgetDetails, Enrichment};
use crate::embed::{Embed, Field, Footer, Severity, truncate};

/// Where a reader goes to see the budgets (the link AWS's own e-mails carry).
pub const BUDGETS_CONSOLE: &str = "https://console.aws.amazon.com/billing/home#/budgets";

/// Where a message came from, for the footer.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub message_id: String,
    pub account_id: Option<String>,
    pub timestamp: Option<String>,
}

fn footer(origin: &Origin) -> Option<Footer> {
    let mut text = format!("message {}", origin.message_id);
    if let Some(a) = &origin.account_id {
        text.push_str(&format!(" · account {a}"));
    }
    Some(Footer { text })
}

fn pct(p: Decimal) -> String {
    format!("{}%", p.normalize())
}

/// Actual spend is more urgent than a forecast; the share of the budget sets the level.
pub fn budget_severity(alert_type: Option<AlertType>, share: Option<Decimal>) -> Severity {
    let share = share.unwrap_or(Decimal::ZERO);
    match alert_type {
        Some(AlertType::Forecasted) if share >= Decimal::ONE_HUNDRED => Severity::High,
        Some(AlertType::Forecasted) => Severity::Warning,
        _ if share >= Decimal::ONE_HUNDRED => Severity::Critical,
        _ if share >= Decimal::from(80) => Severity::High,
        _ => Severity::Warning,
    }
}

pub fn budget_embed(alert: &BudgetAlert, enrichment: &Enrichment, origin: &Origin) -> Embed {
    let details = match enrichment {
        Enrichment::Details(d) => Some(d),
        Enrichment::Unavailable(_) => None,
    };
    // The live limit is the fact when we have it; the notification's otherwise.
    let limit = details
        .and_then(|d| d.limit.clone())
        .or_else(|| alert.budgeted.clone());
    let share = match (&alert.amount, &limit) {
        (Some(a), Some(l)) => share_percent(a.amount, l.amount),
        _ => None,
    };
    let kind = alert.alert_type.map_or("Budget", |t| match t {
        AlertType::Actual => "Actual",
        AlertType::Forecasted => "Forecasted",
    });
    let mut description = match (&alert.amount, &limit, share) {
        (Some(a), Some(l), Some(s)) => {
            format!("{kind} spend **{a}** is **{}** of the {l} budget.", pct(s))
        }
        (Some(a), _, _) => format!("{kind} spend is **{a}**."),
        _ => format!("{kind} threshold crossed."),
    };
    if let Some(t) = &alert.threshold {
        description.push_str(&format!(" Alert threshold: {t}."));
    }
    match enrichment {
        Enrichment::Details(_) => {}
        Enrichment::Unavailable(why) => description.push_str(&format!(
            "\n\n_Live budget details unavailable ({why}); figures are from the notification._"
        )),
    }

    let mut fields = Vec::new();
    if let Some(t) = alert.alert_type {
        fields.push(Field::new("Alert type", t.label(), true));
    }
    if let Some(a) = &alert.amount {
        fields.push(Field::new(
            format!(
                "{} amount",
                alert.alert_type.map_or("Alert", AlertType::label)
            ),
            a.to_string(),
            true,
        ));
    }
    if let Some(l) = &limit {
        fields.push(Field::new("Budgeted amount", l.to_string(), true));
    }
    if let Some(t) = &alert.threshold {
        fields.push(Field::new("Alert threshold", t.to_string(), true));
    }
    if let Some(bt) = &alert.budget_type {
        fields.push(Field::new("Budget type", bt.clone(), true));
    }
    if let Some(d) = details {
        let mut period = d.time_unit.to_ascii_lowercase();
        if let Some(p) = &d.period {
            period.push_str(&format!(" ({p})"));
        }
        fields.push(Field::new("Period", period, true));
        if let (Some(actual), Some(l)) = (&d.actual, &d.limit) {
            fields.push(Field::new(
                "Actual spend (live)",
                with_share(actual, l),
                true,
            ));
        }
        if let (Some(forecast), Some(l)) = (&d.forecast, &d.limit) {
            fields.push(Field::new(
                "Forecasted spend (live)",
                with_share(forecast, l),
                true,
            ));
        }
        if !d.thresholds.is_empty() {
            fields.push(Field::new("Thresholds", d.thresholds.join("\n"), false));
        }
    } else if let Some(p) = alert.period_hint {
        fields.push(Field::new("Period", format!("current {p}"), true));
    }

    Embed {
        title: format!("Budget alert: {}", alert.budget_name),
        description,
        url: Some(BUDGETS_CONSOLE.into()),
        color: budget_severity(alert.alert_type, share).colour(),
        fields,
        footer: footer(origin),
        timestamp: origin.timestamp.clone(),
    }
}

fn with_share(amount: &crate::alert::Money, limit: &crate::alert::Money) -> String {
    match share_percent(amount.amount, limit.amount) {
        Some(s) => format!("{amount} ({})", pct(s)),
        None => amount.to_string(),
    }
}

pub fn anomaly_embed(a: &AnomalyAlert, origin: &Origin) -> Embed {
    let money = |d: Option<Decimal>| d.map(|d| format!("${}", display_amount(d)));
    let severity = match a.impact_percentage {
        Some(p) if p >= Decimal::ONE_HUNDRED => Severity::Critical,
        _ => Severity::High,
    };
    let mut description = match (money(a.total_impact), a.impact_percentage) {
        (Some(i), Some(p)) => format!(
            "Unexpected spend of **{i}** ({} above expected).",
            pct(p.round_dp(1))
        ),
        (Some(i), None) => format!("Unexpected spend of **{i}**."),
        _ => "Cost Anomaly Detection found unexpected spend.".to_owned(),
    };
    if let Some(link) = &a.details_link {
        description.push_str(&format!("\n[Anomaly details]({link})"));
    }
    let mut fields = Vec::new();
    if let Some(m) = &a.monitor_name {
        fields.push(Field::new("Monitor", m.clone(), true));
    }
    if let Some(v) = money(a.total_actual) {
        fields.push(Field::new("Actual spend", v, true));
    }
    if let Some(v) = money(a.total_expected) {
        fields.push(Field::new("Expected spend", v, true));
    }
    if let Some(v) = money(a.max_impact) {
        fields.push(Field::new("Max daily impact", v, true));
    }
    if let Some(start) = &a.start_date {
        let end = a.end_date.as_deref().unwrap_or("ongoing");
        fields.push(Field::new("Window", format!("{start} → {end}"), true));
    }
    for (i, c) in a.root_causes.iter().enumerate() {
        let parts: Vec<String> = [
            c.service.as_ref().map(|s| format!("service: {s}")),
            c.region.as_ref().map(|s| format!("region: {s}")),
            c.linked_account.as_ref().map(|s| format!("account: {s}")),
            c.usage_type.as_ref().map(|s| format!("usage type: {s}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        fields.push(Field::new(
            format!("Root cause {}", i + 1),
            parts.join("\n"),
            false,
        ));
    }
    Embed {
        title: format!(
            "Cost anomaly: {}",
            a.monitor_name.as_deref().unwrap_or("unnamed monitor")
        ),
        description,
        url: a
            .details_link
            .clone()
            .or_else(|| Some(BUDGETS_CONSOLE.into())),
        color: severity.colour(),
        fields,
        footer: footer(origin),
        timestamp: origin.timestamp.clone(),
    }
}

/// A CloudWatch alarm state change: red for ALARM, green for OK, yellow for
/// INSUFFICIENT_DATA; the reason, what it watches and the threshold, and a console link.
pub fn alarm_embed(a: &AlarmChange, origin: &Origin) -> Embed {
    let severity = match a.new_state {
        AlarmState::Alarm => Severity::Critical,
        AlarmState::Ok => Severity::Ok,
        AlarmState::InsufficientData => Severity::Warning,
        AlarmState::Other(_) => Severity::Info,
    };
    let mut description = a.reason.clone().unwrap_or_default();
    if let Some(d) = &a.description {
        description = format!("{}\n\n{description}", truncate(d, 1000));
    }
    let mut fields = Vec::new();
    let transition = match &a.old_state {
        Some(old) => format!("{} → {}", old.label(), a.new_state.label()),
        None => a.new_state.label().to_owned(),
    };
    fields.push(Field::new("State", transition, true));
    if let Some(t) = &a.trigger {
        if let Some(metric) = t.metric() {
            fields.push(Field::new("Metric", truncate(&metric, 1000), false));
        }
        if let Some(condition) = t.condition() {
            fields.push(Field::new("Threshold", condition, true));
        }
        if let Some(missing) = &t.treat_missing_data {
            fields.push(Field::new("Missing data", missing.clone(), true));
        }
    }
    if let Some(rule) = &a.rule {
        fields.push(Field::new("Rule", truncate(rule, 1000), false));
    }
    if let Some(region) = a.region() {
        fields.push(Field::new("Region", region, true));
    }
    let mut embed = Embed {
        title: truncate(&format!("{}: {}", a.new_state.label(), a.name), 256),
        description: truncate(&description, 2000),
        url: Some(a.console_url()),
        color: severity.colour(),
        fields,
        footer: footer(origin),
        timestamp: a.timestamp().or_else(|| origin.timestamp.clone()),
    };
    embed.fit();
    embed
}

/// A short plain notice for a message we could not read: never dropped, never long.
pub fn unrecognised_embed(subject: Option<&str>, text: &str, origin: &Origin) -> Embed {
    let excerpt = truncate(text.trim(), 500).replace("```", "'''");
    Embed {
        title: truncate(subject.unwrap_or("Unrecognised notification"), 200),
        description: format!(
            "A notification arrived in a format this forwarder does not recognise (as it came):\n```\n{excerpt}\n```"
        ),
        url: Some(BUDGETS_CONSOLE.into()),
        color: Severity::Info.colour(),
        fields: vec![],
        footer: footer(origin),
        timestamp: origin.timestamp.clone(),
    }
}

/// One message summarising every budget: limit, actual, forecast, share used.
pub fn digest_embed(budgets: &[BudgetDetails], origin: &Origin) -> Embed {
    let mut worst = Severity::Ok;
    let mut fields = Vec::new();
    for b in budgets {
        let limit = b.limit.as_ref();
        let share = match (limit, &b.actual) {
            (Some(l), Some(a)) => share_percent(a.amount, l.amount),
            _ => None,
        };
        let forecast_share = match (limit, &b.forecast) {
            (Some(l), Some(f)) => share_percent(f.amount, l.amount),
            _ => None,
        };
        let severity = match share {
            Some(s) if s >= Decimal::ONE_HUNDRED => Severity::Critical,
            Some(s) if s >= Decimal::from(80) => Severity::High,
            _ if forecast_share.is_some_and(|f| f >= Decimal::ONE_HUNDRED) => Severity::Warning,
            _ => Severity::Ok,
        };
        worst = worst.max(severity);
        let show = |m: Option<&crate::alert::Money>| m.map_or("—".to_owned(), |m| m.to_string());
        let mut value = format!(
            "Limit {} ({})\nActual {}",
            show(limit),
            b.time_unit.to_ascii_lowercase(),
            show(b.actual.as_ref())
        );
        if let Some(s) = share {
            value.push_str(&format!(" · {} used", pct(s)));
        }
        value.push_str(&format!("\nForecast {}", show(b.forecast.as_ref())));
        if let Some(s) = forecast_share {
            value.push_str(&format!(" · {}", pct(s)));
        }
        fields.push(Field::new(b.name.clone(), value, true));
    }
    let description = if budgets.is_empty() {
        "No budgets are defined for this account.".to_owned()
    } else {
        format!("{} budget(s) as of today.", budgets.len())
    };
    Embed {
        title: "Daily budget digest".into(),
        description,
        url: Some(BUDGETS_CONSOLE.into()),
        color: worst.colour(),
        fields,
        footer: footer(origin),
        timestamp: origin.timestamp.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actual_spend_over_the_budget_is_critical_and_a_forecast_over_it_is_high() {
        let hundred = Some(Decimal::from(105));
        assert_eq!(
            budget_severity(Some(AlertType::Actual), hundred),
            Severity::Critical
        );
        assert_eq!(
            budget_severity(Some(AlertType::Forecasted), hundred),
            Severity::High
        );
        assert_eq!(
            budget_severity(Some(AlertType::Actual), Some(Decimal::from(50))),
            Severity::Warning
        );
    }
}
