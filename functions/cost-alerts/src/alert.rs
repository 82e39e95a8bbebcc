//! What an SNS cost message says: an AWS Budgets alert (plain text), a Cost Anomaly
//! Detection alert (JSON), or something we do not recognise (still forwarded).

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

/// An amount of money, kept exactly as a decimal (never a float).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    pub amount: Decimal,
    pub unit: String,
}

impl Money {
    pub fn new(amount: Decimal, unit: impl Into<String>) -> Self {
        Self {
            amount,
            unit: unit.into(),
        }
    }

    /// Parses `$1,234.5678`, `1234.56 USD`, `USD 12`, `84.1`.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let mut unit = None;
        let mut digits = String::new();
        for word in raw.split_whitespace() {
            if word.len() == 3 && word.chars().all(|c| c.is_ascii_alphabetic()) {
                unit = Some(word.to_ascii_uppercase());
                continue;
            }
            for c in word.chars() {
                match c {
                    '$' => unit = unit.or(Some("USD".to_owned())),
                    ',' => {}
                    c if c.is_ascii_digit() || c == '.' || c == '-' => digits.push(c),
                    _ => {}
                }
            }
        }
        let amount = parse_decimal(&digits)?;
        Some(Self::new(amount, unit.unwrap_or_else(|| "USD".to_owned())))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = display_amount(self.amount);
        if self.unit == "USD" {
            write!(f, "${shown}")
        } else {
            write!(f, "{shown} {}", self.unit)
        }
    }
}

/// At least two decimals, and every significant one beyond that (`84.1` → `84.10`,
/// `0.004` stays `0.004`).
pub fn display_amount(amount: Decimal) -> String {
    let mut d = amount.normalize();
    if d.scale() < 2 {
        d.rescale(2);
    }
    d.to_string()
}

/// `part` as a percentage of `whole`, to one decimal; none when `whole` is zero.
pub fn share_percent(part: Decimal, whole: Decimal) -> Option<Decimal> {
    if whole.is_zero() {
        return None;
    }
    part.checked_div(whole)
        .and_then(|r| r.checked_mul(Decimal::ONE_HUNDRED))
        .map(|p| p.round_dp(1))
}

/// A decimal from text, plain or in scientific notation.
pub fn parse_decimal(raw: &str) -> Option<Decimal> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    Decimal::from_str(raw)
        .or_else(|_| Decimal::from_scientific(raw))
        .ok()
}

/// A decimal from a JSON string or number, read from its text (so `0.1` stays exactly 0.1).
pub fn decimal_from_json(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => parse_decimal(&n.to_string()),
        Value::String(s) => parse_decimal(s),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertType {
    Actual,
    Forecasted,
}

impl AlertType {
    fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim().to_ascii_lowercase();
        if raw.starts_with("actual") {
            Some(Self::Actual)
        } else if raw.starts_with("forecast") {
            Some(Self::Forecasted)
        } else {
            None
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Actual => "ACTUAL",
            Self::Forecasted => "FORECASTED",
        }
    }
}

/// `Alert Threshold: > $80.00` (absolute) or `> 80%` (share of the budget).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Threshold {
    Absolute(Money),
    Percent(Decimal),
}

impl Threshold {
    fn parse(raw: &str) -> Option<Self> {
        let raw = raw
            .trim()
            .trim_start_matches(['>', '<', '=', '≥', '≤'])
            .trim();
        if let Some(p) = raw.strip_suffix('%') {
            return parse_decimal(p.trim()).map(Self::Percent);
        }
        Money::parse(raw).map(Self::Absolute)
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Absolute(m) => write!(f, "> {m}"),
            Self::Percent(p) => write!(f, "> {}%", p.normalize()),
        }
    }
}

/// The labelled facts of an AWS Budgets notification. The prose around them is ignored:
/// its amount can disagree with the labelled line, which is the fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetAlert {
    pub budget_name: String,
    pub budget_type: Option<String>,
    pub budgeted: Option<Money>,
    pub alert_type: Option<AlertType>,
    pub threshold: Option<Threshold>,
    /// The `ACTUAL Amount` or `FORECASTED Amount` line.
    pub amount: Option<Money>,
    pub account_id: Option<String>,
    /// `day`, `month`, `quarter` or `year`, when the prose names the period.
    pub period_hint: Option<&'static str>,
}

impl BudgetAlert {
    /// Reads the labelled lines case-insensitively; `None` unless there is a budget name
    /// and at least an alert type or an amount (otherwise it is not a Budgets alert).
    pub fn parse(text: &str) -> Option<Self> {
        let mut alert = Self {
            budget_name: String::new(),
            budget_type: None,
            budgeted: None,
            alert_type: None,
            threshold: None,
            amount: None,
            account_id: None,
            period_hint: None,
        };
        let mut actual_amount = None;
        let mut forecast_amount = None;
        for line in text.lines() {
            let Some((label, value)) = labelled(line) else {
                continue;
            };
            if value.is_empty() {
                continue;
            }
            match label.as_str() {
                "budget name" if alert.budget_name.is_empty() => {
                    alert.budget_name = value.to_owned();
                }
                "budget type" if alert.budget_type.is_none() => {
                    alert.budget_type = Some(value.to_owned());
                }
                "budgeted amount" if alert.budgeted.is_none() => {
                    alert.budgeted = Money::parse(value);
                }
                "alert type" if alert.alert_type.is_none() => {
                    alert.alert_type = AlertType::parse(value);
                }
                "alert threshold" if alert.threshold.is_none() => {
                    alert.threshold = Threshold::parse(value);
                }
                "actual amount" if actual_amount.is_none() => {
                    actual_amount = Money::parse(value);
                }
                "forecasted amount" | "forecast amount" if forecast_amount.is_none() => {
                    forecast_amount = Money::parse(value);
                }
                _ => {}
            }
        }
        if alert.budget_name.is_empty() {
            return None;
        }
        // The amount that matches the alert type; either one when the type is missing.
        alert.amount = match alert.alert_type {
            Some(AlertType::Actual) => actual_amount.or(forecast_amount),
            Some(AlertType::Forecasted) => forecast_amount.or(actual_amount),
            None => {
                if forecast_amount.is_some() && actual_amount.is_none() {
                    alert.alert_type = Some(AlertType::Forecasted);
                } else if actual_amount.is_some() {
                    alert.alert_type = Some(AlertType::Actual);
                }
                actual_amount.or(forecast_amount)
            }
        };
        if alert.alert_type.is_none() && alert.amount.is_none() {
            return None;
        }
        alert.account_id = account_in_text(text);
        alert.period_hint = period_in_prose(text, &alert.budget_name);
        Some(alert)
    }
}

/// `AWS Account 123456789012` in the notification header.
fn account_in_text(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let at = lower.find("aws account")?;
    let rest = &text[at + "aws account".len()..];
    let digits: String = rest
        .trim_start_matches(|c: char| !c.is_ascii_digit() && c != '\n')
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    (digits.len() == 12).then_some(digits)
}

/// `Budget  NAME: x` → (`budget name`, `x`): the label in lower case with its spaces
/// collapsed, the value trimmed.
fn labelled(line: &str) -> Option<(String, &str)> {
    let (label, value) = line.split_once(':')?;
    let label = label
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    Some((label, value.trim()))
}

/// The period of AWS's sentence "... associated with your <name> budget is greater than
/// <threshold> for the current <period>." The name is the customer's own words and may say
/// "for the current day" itself: it is taken out of that sentence, and its labelled line
/// is not prose.
fn period_in_prose(text: &str, budget_name: &str) -> Option<&'static str> {
    let named = format!("your {budget_name} budget");
    let prose = text
        .lines()
        .filter(|line| labelled(line).is_none_or(|(label, _)| label != "budget name"))
        .map(|line| line.replace(&named, "your budget").to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join("\n");
    ["day", "month", "quarter", "year"]
        .into_iter()
        .find(|p| prose.contains(&format!("for the current {p}")))
}

/// The account id inside `arn:aws:sns:<region>:<account>:<topic>`.
pub fn account_from_arn(arn: &str) -> Option<String> {
    let account = arn.split(':').nth(4)?;
    (account.len() == 12 && account.chars().all(|c| c.is_ascii_digit())).then(|| account.to_owned())
}

/// A Cost Anomaly Detection alert (IMMEDIATE subscriptions publish it as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnomalyAlert {
    pub account_id: Option<String>,
    pub anomaly_id: Option<String>,
    pub monitor_name: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub max_impact: Option<Decimal>,
    pub total_actual: Option<Decimal>,
    pub total_expected: Option<Decimal>,
    pub total_impact: Option<Decimal>,
    pub impact_percentage: Option<Decimal>,
    pub root_causes: Vec<RootCause>,
    pub details_link: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RootCause {
    pub service: Option<String>,
    pub region: Option<String>,
    pub linked_account: Option<String>,
    pub usage_type: Option<String>,
}

impl AnomalyAlert {
    /// `None` unless the message is a JSON object carrying an anomaly id or an impact.
    pub fn parse(message: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(message.trim()).ok()?;
        let obj = v.as_object()?;
        if !obj.contains_key("anomalyId") && !obj.contains_key("impact") {
            return None;
        }
        let text = |v: Option<&Value>| match v {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let impact = obj.get("impact");
        let num = |k: &str| impact.and_then(|i| i.get(k)).and_then(decimal_from_json);
        let root_causes = obj
            .get("rootCauses")
            .and_then(Value::as_array)
            .map(|causes| {
                causes
                    .iter()
                    .map(|c| RootCause {
                        service: text(c.get("service")),
                        region: text(c.get("region")),
                        linked_account: text(c.get("linkedAccount")),
                        usage_type: text(c.get("usageType")),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            account_id: text(obj.get("accountId")),
            anomaly_id: text(obj.get("anomalyId")),
            monitor_name: text(obj.get("monitorName")),
            start_date: text(obj.get("anomalyStartDate")),
            end_date: text(obj.get("anomalyEndDate")),
            max_impact: num("maxImpact"),
            total_actual: num("totalActualSpend"),
            total_expected: num("totalExpectedSpend"),
            total_impact: num("totalImpact"),
            impact_percentage: num("totalImpactPercentage"),
            root_causes,
            details_link: text(obj.get("anomalyDetailsLink")).filter(|l| l.starts_with("https://")),
        })
    }
}

/// What one SNS message turned out to be: a cost alert, a CloudWatch alarm state change
/// (the alarm topic), or neither (forwarded as it came).
#[derive(Debug, Clone, PartialEq)]
pub enum CostMessage {
    Alarm(crate::alarm::AlarmChange),
    Budget(BudgetAlert),
    Anomaly(AnomalyAlert),
    Unrecognised {
        subject: Option<String>,
        text: String,
    },
}

impl CostMessage {
    pub fn classify(subject: Option<&str>, message: &str) -> Self {
        if let Some(a) = crate::alarm::AlarmChange::parse(message) {
            return Self::Alarm(a);
        }
        if let Some(a) = AnomalyAlert::parse(message) {
            return Self::Anomaly(a);
        }
        if let Some(b) = BudgetAlert::parse(message) {
            return Self::Budget(b);
        }
        Self::Unrecognised {
            subject: subject.map(str::to_owned),
            text: message.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn money_keeps_every_decimal_and_reads_thousands_separators() {
        assert_eq!(
            Money::parse("$1,234.5678").unwrap().amount,
            dec("1234.5678")
        );
        assert_eq!(Money::parse("84.1 USD").unwrap().to_string(), "$84.10");
        assert_eq!(Money::parse("12 EUR").unwrap().to_string(), "12.00 EUR");
        assert_eq!(Money::parse("$0.004").unwrap().to_string(), "$0.004");
        assert!(Money::parse("n/a").is_none());
    }

    #[test]
    fn labelled_lines_are_read_whatever_their_case_and_the_prose_is_ignored() {
        let text = "AWS Account 111122223333\n\nThe Actual Cost is $99.99.\n\
                    budget NAME:  team-x \nAlert Type: Actual\nActual Amount: $84.123\n\
                    Budgeted Amount: $100\nALERT THRESHOLD: > 80%\n";
        let a = BudgetAlert::parse(text).unwrap();
        assert_eq!(a.budget_name, "team-x");
        assert_eq!(a.alert_type, Some(AlertType::Actual));
        assert_eq!(a.amount.unwrap().amount, dec("84.123"));
        assert_eq!(a.budgeted.unwrap().amount, dec("100"));
        assert_eq!(a.threshold, Some(Threshold::Percent(dec("80"))));
        assert_eq!(a.account_id.as_deref(), Some("111122223333"));
    }

    #[test]
    fn the_period_comes_from_aws_sentence_not_from_a_budget_name_that_says_one() {
        // Found by tests/properties.rs: a name saying "for the current day" set the period.
        let notice = |name: &str, period: &str| {
            format!(
                "AWS Account 111122223333\n\nYou requested that we alert you when the ACTUAL Cost \
                 associated with your {name} budget is greater than $80.00{period}.\n\n\
                 Budget Name: {name}\nAlert Type: ACTUAL\nACTUAL Amount: $84.12\n"
            )
        };
        let period = |text: String| BudgetAlert::parse(&text).unwrap().period_hint;
        assert_eq!(
            period(notice("cap for the current day", " for the current month")),
            Some("month")
        );
        assert_eq!(period(notice("cap for the current day", "")), None);
        // A name that is only a period word takes nothing from the sentence.
        assert_eq!(
            period(notice("month", " for the current quarter")),
            Some("quarter")
        );
        assert_eq!(
            period(notice("year", " for the current year")),
            Some("year")
        );
    }

    #[test]
    fn text_without_a_budget_name_is_not_a_budget_alert() {
        assert!(BudgetAlert::parse("Alert Type: ACTUAL\nACTUAL Amount: $3").is_none());
        assert!(BudgetAlert::parse("hello: world").is_none());
    }

    #[test]
    fn the_account_is_read_from_a_topic_arn() {
        assert_eq!(
            account_from_arn("arn:aws:sns:us-east-1:246796806071:snsNetTest").as_deref(),
            Some("246796806071")
        );
        assert_eq!(account_from_arn("nonsense"), None);
    }

    #[test]
    fn shares_are_rounded_to_one_decimal_and_zero_limits_have_none() {
        assert_eq!(share_percent(dec("84.12"), dec("100")), Some(dec("84.1")));
        assert_eq!(share_percent(dec("1"), dec("0")), None);
    }
}
