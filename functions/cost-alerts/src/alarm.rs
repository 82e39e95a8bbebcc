//! CloudWatch alarm state changes, as CloudWatch publishes them to an SNS topic: a JSON
//! document with `AlarmName`, `NewStateValue`, `NewStateReason`, `StateChangeTime`,
//! `AlarmArn` and, for a metric alarm, its `Trigger` (a composite alarm has an
//! `AlarmRule` instead).
//!
//! Read leniently on purpose. `aws_lambda_events::sns::CloudWatchAlarmPayload` requires
//! every field as a non-null string and a `Trigger`, so it rejects what CloudWatch really
//! sends for an alarm without a description (`"AlarmDescription": null`) and every
//! composite alarm; an alarm the team never sees is worse than one with a field missing.

use serde_json::{Map, Value};

/// An alarm's state as CloudWatch names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlarmState {
    Alarm,
    Ok,
    InsufficientData,
    Other(String),
}

impl AlarmState {
    fn parse(s: &str) -> Self {
        match s {
            "ALARM" => Self::Alarm,
            "OK" => Self::Ok,
            "INSUFFICIENT_DATA" => Self::InsufficientData,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn label(&self) -> &str {
        match self {
            Self::Alarm => "ALARM",
            Self::Ok => "OK",
            Self::InsufficientData => "INSUFFICIENT_DATA",
            Self::Other(s) => s,
        }
    }
}

/// What a metric alarm watches (absent for a composite alarm).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trigger {
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    /// `Sum`, `Maximum`, ... or an extended statistic such as `p99`.
    pub statistic: Option<String>,
    pub dimensions: Vec<(String, String)>,
    pub comparison: Option<String>,
    pub threshold: Option<f64>,
    pub period_seconds: Option<i64>,
    pub evaluation_periods: Option<i64>,
    pub datapoints_to_alarm: Option<i64>,
    pub treat_missing_data: Option<String>,
    /// Metric math: the expression that returns data (e.g. a 5xx rate).
    pub expression: Option<String>,
}

/// One alarm state change.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmChange {
    pub name: String,
    pub description: Option<String>,
    pub account_id: Option<String>,
    pub arn: Option<String>,
    pub new_state: AlarmState,
    pub old_state: Option<AlarmState>,
    pub reason: Option<String>,
    pub state_change_time: Option<String>,
    pub trigger: Option<Trigger>,
    /// A composite alarm's rule, e.g. `ALARM(a) OR ALARM(b)`.
    pub rule: Option<String>,
}

fn text(o: &Map<String, Value>, key: &str) -> Option<String> {
    match o.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn int(o: &Map<String, Value>, key: &str) -> Option<i64> {
    match o.get(key) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

fn float(o: &Map<String, Value>, key: &str) -> Option<f64> {
    match o.get(key) {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Trigger {
    fn parse(o: &Map<String, Value>) -> Self {
        let dims = |v: Option<&Value>| -> Vec<(String, String)> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_object)
                        .filter_map(|d| {
                            // CloudWatch writes lower-case keys here ("name", "value").
                            let name = text(d, "name").or_else(|| text(d, "Name"))?;
                            let value = text(d, "value").or_else(|| text(d, "Value"))?;
                            Some((name, value))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut trigger = Self {
            namespace: text(o, "Namespace"),
            metric_name: text(o, "MetricName"),
            statistic: text(o, "ExtendedStatistic").or_else(|| text(o, "Statistic")),
            dimensions: dims(o.get("Dimensions")),
            comparison: text(o, "ComparisonOperator"),
            threshold: float(o, "Threshold"),
            period_seconds: int(o, "Period"),
            evaluation_periods: int(o, "EvaluationPeriods"),
            datapoints_to_alarm: int(o, "DatapointsToAlarm"),
            treat_missing_data: text(o, "TreatMissingData"),
            expression: None,
        };
        // A metric-math alarm lists its queries; the one that returns data is what alarms.
        if let Some(queries) = o.get("Metrics").and_then(Value::as_array) {
            let returned = queries.iter().filter_map(Value::as_object).find(|q| {
                q.get("ReturnData")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            });
            if let Some(q) = returned {
                trigger.expression = text(q, "Expression").or_else(|| text(q, "Label"));
                if let Some(stat) = q.get("MetricStat").and_then(Value::as_object) {
                    let metric = stat.get("Metric").and_then(Value::as_object);
                    trigger.namespace = metric.and_then(|m| text(m, "Namespace"));
                    trigger.metric_name = metric.and_then(|m| text(m, "MetricName"));
                    trigger.dimensions = dims(metric.and_then(|m| m.get("Dimensions")));
                    trigger.statistic = text(stat, "Stat");
                    trigger.period_seconds = int(stat, "Period");
                }
            }
        }
        trigger
    }

    /// `AWS/Lambda Errors (FunctionName=encache-dev-health)`.
    pub fn metric(&self) -> Option<String> {
        if let Some(e) = &self.expression {
            return Some(e.clone());
        }
        let name = self.metric_name.as_deref()?;
        let mut s = match &self.namespace {
            Some(ns) => format!("{ns} {name}"),
            None => name.to_owned(),
        };
        if !self.dimensions.is_empty() {
            let dims: Vec<String> = self
                .dimensions
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            s.push_str(&format!(" ({})", dims.join(", ")));
        }
        Some(s)
    }

    /// `Sum > 0 for 1 of 1 × 300 s`.
    pub fn condition(&self) -> Option<String> {
        let op = match self.comparison.as_deref()? {
            "GreaterThanOrEqualToThreshold" => "≥",
            "GreaterThanThreshold" => ">",
            "LessThanThreshold" => "<",
            "LessThanOrEqualToThreshold" => "≤",
            "LessThanLowerOrGreaterThanUpperThreshold" => "outside the band of",
            "GreaterThanUpperThreshold" => "above the band of",
            "LessThanLowerThreshold" => "below the band of",
            other => other,
        };
        let threshold = self
            .threshold
            .map(|t| format!("{t}"))
            .unwrap_or_else(|| "?".into());
        let mut s = format!(
            "{} {op} {threshold}",
            self.statistic.as_deref().unwrap_or("value")
        );
        if let (Some(n), Some(p)) = (self.evaluation_periods, self.period_seconds) {
            let m = self.datapoints_to_alarm.unwrap_or(n);
            s.push_str(&format!(" for {m} of {n} × {p} s"));
        }
        Some(s)
    }
}

impl AlarmChange {
    /// The alarm a message describes, or `None` when it is not a CloudWatch alarm
    /// notification (it then goes to Discord as an unrecognised message, never dropped).
    pub fn parse(message: &str) -> Option<Self> {
        let value: Value = serde_json::from_str(message.trim()).ok()?;
        let o = value.as_object()?;
        let name = text(o, "AlarmName")?;
        let new_state = AlarmState::parse(&text(o, "NewStateValue")?);
        let trigger = o
            .get("Trigger")
            .and_then(Value::as_object)
            .map(Trigger::parse);
        Some(Self {
            name,
            description: text(o, "AlarmDescription"),
            account_id: text(o, "AWSAccountId"),
            arn: text(o, "AlarmArn"),
            new_state,
            old_state: text(o, "OldStateValue").map(|s| AlarmState::parse(&s)),
            reason: text(o, "NewStateReason"),
            state_change_time: text(o, "StateChangeTime"),
            trigger,
            rule: text(o, "AlarmRule"),
        })
    }

    /// One delivery per alarm and state change: CloudWatch may publish the same change
    /// more than once (one per action naming the topic, SNS retries), each with its own
    /// SNS message id.
    pub fn dedupe_key(&self) -> String {
        format!(
            "alarm:{}:{}:{}",
            self.arn.as_deref().unwrap_or(&self.name),
            self.new_state.label(),
            self.state_change_time.as_deref().unwrap_or("")
        )
    }

    /// The region code, from the alarm's ARN (the message's `Region` is the long name,
    /// "US East (N. Virginia)").
    pub fn region(&self) -> Option<&str> {
        let arn = self.arn.as_deref()?;
        let region = arn.split(':').nth(3)?;
        (!region.is_empty()).then_some(region)
    }

    /// The alarm in the CloudWatch console.
    pub fn console_url(&self) -> String {
        let region = self.region().unwrap_or("us-east-1");
        let name: String =
            percent_encoding::utf8_percent_encode(&self.name, percent_encoding::NON_ALPHANUMERIC)
                .collect();
        format!(
            "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#alarmsV2:alarm/{name}"
        )
    }

    /// `StateChangeTime` as Discord's ISO 8601 (CloudWatch writes `+0000`, without the
    /// colon Discord's parser wants).
    pub fn timestamp(&self) -> Option<String> {
        let t = self.state_change_time.as_deref()?;
        // The field comes from the message: never cut inside a character.
        let Some(cut) = t.len().checked_sub(5).filter(|&c| t.is_char_boundary(c)) else {
            return Some(t.to_owned());
        };
        let (head, tail) = t.split_at(cut);
        let offset = tail.as_bytes();
        if (offset[0] == b'+' || offset[0] == b'-') && offset[1..].iter().all(u8::is_ascii_digit) {
            return Some(format!("{head}{}:{}", &tail[..3], &tail[3..]));
        }
        Some(t.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_alarm_reads_its_trigger_and_a_null_description_is_none() {
        let m = r#"{"AlarmName":"encache-dev-health-errors","AlarmDescription":null,
            "AWSAccountId":"111122223333","NewStateValue":"ALARM","OldStateValue":"OK",
            "NewStateReason":"Threshold Crossed","StateChangeTime":"2026-11-30T10:00:00.000+0000",
            "Region":"US East (N. Virginia)",
            "AlarmArn":"arn:aws:cloudwatch:us-east-1:111122223333:alarm:encache-dev-health-errors",
            "Trigger":{"MetricName":"Errors","Namespace":"AWS/Lambda","Statistic":"SUM",
              "Dimensions":[{"value":"encache-dev-health","name":"FunctionName"}],
              "Period":300,"EvaluationPeriods":1,"ComparisonOperator":"GreaterThanOrEqualToThreshold",
              "Threshold":1.0,"TreatMissingData":"notBreaching"}}"#;
        let a = AlarmChange::parse(m).unwrap();
        assert_eq!(a.new_state, AlarmState::Alarm);
        assert_eq!(a.description, None);
        assert_eq!(a.region(), Some("us-east-1"));
        let t = a.trigger.as_ref().unwrap();
        assert_eq!(
            t.metric().unwrap(),
            "AWS/Lambda Errors (FunctionName=encache-dev-health)"
        );
        assert_eq!(t.condition().unwrap(), "SUM ≥ 1 for 1 of 1 × 300 s");
        assert_eq!(a.timestamp().unwrap(), "2026-11-30T10:00:00.000+00:00");
        assert!(
            a.console_url()
                .ends_with("#alarmsV2:alarm/encache%2Ddev%2Dhealth%2Derrors")
        );
    }

    #[test]
    fn the_same_change_twice_has_one_key_and_the_next_change_another() {
        let m = |state: &str, at: &str| {
            format!(r#"{{"AlarmName":"a","NewStateValue":"{state}","StateChangeTime":"{at}"}}"#)
        };
        let key = |s: String| AlarmChange::parse(&s).unwrap().dedupe_key();
        assert_eq!(key(m("ALARM", "t1")), key(m("ALARM", "t1")));
        assert_ne!(key(m("ALARM", "t1")), key(m("OK", "t2")));
    }

    #[test]
    fn a_state_change_time_with_multibyte_characters_is_kept_not_a_panic() {
        for t in [
            "2026-11-30T10:00:00€",
            "€€",
            "ä",
            "2026-11-30T10:00:00.000+0000",
        ] {
            let m = format!(r#"{{"AlarmName":"a","NewStateValue":"OK","StateChangeTime":"{t}"}}"#);
            let a = AlarmChange::parse(&m).unwrap();
            assert!(a.timestamp().is_some(), "{t}");
        }
    }

    #[test]
    fn what_is_not_an_alarm_is_none() {
        for m in [
            "",
            "not json",
            "[]",
            r#"{"AlarmName":"no state"}"#,
            r#"{"NewStateValue":"ALARM"}"#,
            r#"{"anomalyId":"x"}"#,
            r#"{"AlarmName":7,"NewStateValue":{"nested":true}}"#,
        ] {
            assert!(AlarmChange::parse(m).is_none(), "{m}");
        }
    }
}
