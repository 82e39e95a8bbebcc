//! Properties of what the forwarder reads from SNS: AWS Budgets text, Cost Anomaly
//! Detection JSON and CloudWatch alarm JSON. No message of any shape panics on its way to
//! a Discord embed (which always fits Discord's limits), and a well-formed message parses
//! back to exactly the facts it was written from. The examples beside the code show the
//! cases someone thought of; these hold for thousands of generated ones.

use encache_cost_alerts::alarm::{AlarmChange, AlarmState, Trigger};
use encache_cost_alerts::alert::{
    AlertType, AnomalyAlert, BudgetAlert, CostMessage, Money, RootCause, Threshold,
};
use encache_cost_alerts::budgets::Enrichment;
use encache_cost_alerts::embed::{
    DESCRIPTION_MAX, FIELD_NAME_MAX, FIELD_VALUE_MAX, FIELDS_MAX, FOOTER_MAX, TITLE_MAX, TOTAL_MAX,
    WebhookMessage,
};
use encache_cost_alerts::render::{self, Origin};
use proptest::prelude::*;
use proptest::sample::Index;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

/// Each case is a parse and a render of microseconds. Failures are not persisted to a
/// file: a case found is kept as an example test beside the code it broke.
fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Text and values
// ---------------------------------------------------------------------------------------

/// Text of `len` characters drawn from `chars` (cheaper to generate than a regex).
fn text_of(
    chars: impl Strategy<Value = char> + Clone,
    len: std::ops::Range<usize>,
) -> impl Strategy<Value = String> + Clone {
    prop::collection::vec(chars, len).prop_map(|c| c.into_iter().collect())
}

fn one_of(set: &str) -> impl Strategy<Value = char> + Clone + use<> {
    prop::sample::select(set.chars().collect::<Vec<_>>())
}

/// Any text: every Unicode scalar value, controls and NUL included.
fn any_text(len: std::ops::Range<usize>) -> impl Strategy<Value = String> + Clone {
    text_of(any::<char>(), len)
}

/// What a person or AWS writes in a free-text field: never blank (the parsers read a
/// blank field as absent), anything else goes, `"`, `\`, newlines and emoji included.
fn words() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        3 => text_of(one_of("abcXYZ019 -_./()\"\\é€😀\n"), 1..24),
        1 => any_text(1..24),
    ]
    .prop_map(|s| {
        if s.trim().is_empty() {
            format!("{s}x")
        } else {
            s
        }
    })
}

fn digits(n: usize) -> impl Strategy<Value = String> + Clone {
    text_of(one_of("0123456789"), n..n + 1)
}

/// A non-negative amount with up to four decimals and at most 15 significant digits
/// (what a JSON number carries exactly through an f64).
fn amount() -> impl Strategy<Value = Decimal> + Clone {
    prop_oneof![
        1 => Just(Decimal::ZERO),
        4 => (0i64..100_000_000, 0u32..=4).prop_map(|(m, s)| Decimal::new(m, s)),
        2 => (0i64..1_000_000_000_000_000, 0u32..=4).prop_map(|(m, s)| Decimal::new(m, s)),
    ]
}

/// `1234567.5` as `1,234,567.5`.
fn with_thousands(d: Decimal) -> String {
    let text = d.to_string();
    let (int, frac) = text
        .split_once('.')
        .map_or((text.as_str(), None), |(i, f)| (i, Some(f)));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// Money as the notifications write it, in every spelling the parser promises to read:
/// `$1,234.5678`, `$1234.5678`, `1234.5678 USD`, `USD 12`, `12.00 EUR`.
fn money() -> impl Strategy<Value = (Money, String)> + Clone {
    let unit = prop_oneof![
        3 => Just("USD".to_owned()),
        1 => prop::sample::select(vec!["EUR", "GBP", "JPY", "INR"]).prop_map(str::to_owned),
    ];
    (amount(), unit, 0..4u8).prop_map(|(amount, unit, style)| {
        let text = match (unit.as_str(), style) {
            ("USD", 0) => format!("${}", with_thousands(amount)),
            ("USD", 1) => format!("${amount}"),
            (_, 2) => format!("{unit} {amount}"),
            _ => format!("{amount} {unit}"),
        };
        (Money::new(amount, unit), text)
    })
}

/// A JSON value of any shape: the wrong type where a string or number is expected,
/// numbers that no decimal holds, nesting.
fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(vec![
            "1e400",
            "-1e-400",
            "79228162514264337593543950336",
            "1E+28",
            "0.0000000000000000000000000001",
            "-0"
        ])
        .prop_map(|n| serde_json::from_str::<Value>(n).unwrap_or(Value::Null)),
        text_of(one_of("0123456789.-+eE,$% "), 0..40).prop_map(Value::String),
        any_text(0..20).prop_map(Value::String),
        prop::sample::select(vec![
            "ALARM",
            "OK",
            "INSUFFICIENT_DATA",
            "https://x",
            "  ",
            ""
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Mostly the keys the parsers look for, so the wrong values land where they read.
fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "AlarmName", "NewStateValue", "OldStateValue", "AlarmDescription", "AWSAccountId",
            "AlarmArn", "StateChangeTime", "NewStateReason", "AlarmRule", "Trigger", "Metrics",
            "ReturnData", "Expression", "Label", "MetricStat", "Metric", "Stat", "Period",
            "Dimensions", "name", "value", "Name", "Value", "Threshold", "EvaluationPeriods",
            "DatapointsToAlarm", "ComparisonOperator", "anomalyId", "impact", "maxImpact",
            "totalImpact", "totalImpactPercentage", "totalActualSpend", "rootCauses", "service",
            "anomalyDetailsLink", "accountId", "monitorName",
        ])
        .prop_map(str::to_owned),
        1 => any_text(0..8),
    ]
}

/// Every node of `v` below the root, as JSON pointers.
fn pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match v {
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, c)| (i.to_string(), c))
            .collect(),
        Value::Object(o) => o
            .iter()
            .map(|(k, c)| (k.replace('~', "~0").replace('/', "~1"), c))
            .collect(),
        _ => vec![],
    };
    for (key, child) in children {
        let p = format!("{at}/{key}");
        out.push(p.clone());
        pointers(child, &p, out);
    }
}

/// `base` with a few of its nodes replaced by values of any shape.
fn damaged(base: Value, edits: Vec<(Index, Value)>) -> Value {
    let mut v = base;
    for (at, with) in edits {
        let mut all = Vec::new();
        pointers(&v, "", &mut all);
        if all.is_empty() {
            return with;
        }
        if let Some(node) = v.pointer_mut(&all[at.index(all.len())]) {
            *node = with;
        }
    }
    v
}

// ---------------------------------------------------------------------------------------
// AWS Budgets (plain text)
// ---------------------------------------------------------------------------------------

/// The facts of a Budgets notification, and the text AWS would send for them.
#[derive(Debug, Clone)]
struct Budgets {
    facts: BudgetAlert,
    text: String,
}

/// A budget name as AWS allows it (no `:` or `\`), without edge whitespace (the value of
/// a labelled line is trimmed), made of letters and of the phrases the parser looks for
/// in the rest of the text.
fn budget_name() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => text_of(one_of("abcdefXYZ0189 _.-()/é€"), 1..12),
        1 => prop::sample::select(vec![
            " for the current day ", " for the current year", "AWS Account ", "123456789012",
            "Actual Amount", "$12.00", " budget ",
        ])
        .prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 1..5).prop_map(|pieces| {
        let name = pieces.concat();
        match name.trim() {
            "" => "b".to_owned(),
            t => t.to_owned(),
        }
    })
}

/// A label as a person retyping it might: any case, any inner spacing.
fn spell(label: &str, style: u8) -> String {
    match style % 4 {
        0 => label.to_owned(),
        1 => label.to_ascii_uppercase(),
        2 => label.to_ascii_lowercase(),
        _ => format!(" {}", label.replace(' ', "  \t")),
    }
}

fn budgets() -> BoxedStrategy<Budgets> {
    let threshold = prop_oneof![
        (amount(), any::<bool>()).prop_map(|(p, spaced)| {
            let text = if spaced {
                format!("> {p} %")
            } else {
                format!("> {p}%")
            };
            (Threshold::Percent(p), text)
        }),
        money().prop_map(|(m, text)| (Threshold::Absolute(m), format!("> {text}"))),
    ];
    (
        (digits(12), budget_name(), prop::option::of(prop::sample::select(vec!["Cost", "Usage", "RI Utilization"]))),
        (prop::option::of(money()), any::<bool>(), prop::option::of(threshold), prop::option::of(money())),
        (
            prop::option::of(prop::sample::select(vec!["day", "month", "quarter", "year"])),
            any::<u8>(),
            any::<bool>(),
        ),
    )
        .prop_map(|((account, name, budget_type), (budgeted, actual, threshold, amount), (period, style, crlf))| {
            let (kind, amount_label) = if actual {
                (AlertType::Actual, "ACTUAL Amount")
            } else {
                (AlertType::Forecasted, "FORECASTED Amount")
            };
            let kind_text = if style & 4 == 0 { kind.label().to_owned() } else { kind.label().to_ascii_lowercase() };
            let over = threshold.as_ref().map_or("your threshold".to_owned(), |(_, t)| t.clone());
            let mut lines = vec![
                "AWS Budget Notification November 21, 2026".to_owned(),
                format!("AWS Account {account}"),
                String::new(),
                "Dear AWS Customer,".to_owned(),
                String::new(),
                // The prose names another amount than the labelled line: the line is the fact.
                format!(
                    "You requested that we alert you when the {kind_text} Cost associated with your {name} budget is greater than {over}{}. The {kind_text} Cost associated with this budget is $1.00.",
                    period.map_or(String::new(), |p| format!(" for the current {p}"))
                ),
                String::new(),
                format!("{}: {name}", spell("Budget Name", style)),
            ];
            if let Some(t) = budget_type {
                lines.push(format!("{}: {t}", spell("Budget Type", style >> 1)));
            }
            if let Some((_, text)) = &budgeted {
                lines.push(format!("{}: {text}", spell("Budgeted Amount", style >> 2)));
            }
            lines.push(format!("{}: {kind_text}", spell("Alert Type", style >> 3)));
            if let Some((_, text)) = &threshold {
                lines.push(format!("{}:{text}", spell("Alert Threshold", style >> 4)));
            }
            if let Some((_, text)) = &amount {
                lines.push(format!("{}: {text}", spell(amount_label, style >> 5)));
            }
            lines.push(String::new());
            lines.push("[1] https://console.aws.amazon.com/billing/home#/budgets".to_owned());
            let text = lines.join(if crlf { "\r\n" } else { "\n" });
            Budgets {
                facts: BudgetAlert {
                    budget_name: name,
                    budget_type: budget_type.map(str::to_owned),
                    budgeted: budgeted.map(|(m, _)| m),
                    alert_type: Some(kind),
                    threshold: threshold.map(|(t, _)| t),
                    amount: amount.map(|(m, _)| m),
                    account_id: Some(account),
                    period_hint: period,
                },
                text,
            }
        })
    .boxed()
}

/// Budgets-like text whose values are anything: labelled lines the parser reads, with
/// what no notification says after the colon, among lines of any text.
fn budgets_like() -> BoxedStrategy<String> {
    let label = prop::sample::select(vec![
        "Budget Name",
        "Budget Type",
        "Budgeted Amount",
        "Alert Type",
        "Alert Threshold",
        "ACTUAL Amount",
        "FORECASTED Amount",
        "Forecast Amount",
        "AWS Account",
    ]);
    let value = prop_oneof![
        text_of(
            one_of("0123456789.,-+eE$%<>=≥≤ USDEURactualforecast"),
            0..30
        ),
        any_text(0..30),
    ];
    let line = prop_oneof![
        3 => (label, value).prop_map(|(l, v)| format!("{l}:{v}")),
        1 => any_text(0..40),
        1 => text_of(one_of("AWS Account 0123456789for the current daymonth\r"), 0..40),
    ];
    prop::collection::vec(line, 0..12)
        .prop_map(|lines| lines.join("\n"))
        .boxed()
}

// ---------------------------------------------------------------------------------------
// Cost Anomaly Detection (JSON)
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Anomaly {
    facts: AnomalyAlert,
    message: Value,
}

/// A decimal as AWS may send it: a JSON number or a string.
fn decimal_json(d: Decimal, as_string: bool) -> Value {
    if as_string {
        Value::String(d.to_string())
    } else {
        serde_json::from_str(&d.to_string()).expect("a decimal is a JSON number")
    }
}

fn anomaly() -> BoxedStrategy<Anomaly> {
    let cause = (
        prop::option::of(words()),
        prop::option::of(words()),
        prop::option::of(digits(12)),
        prop::option::of(words()),
    )
        .prop_map(|(service, region, linked_account, usage_type)| RootCause {
            service,
            region,
            linked_account,
            usage_type,
        });
    let link = prop_oneof![
        Just(None),
        words().prop_map(|w| Some(format!(
            "https://console.aws.amazon.com/cost-management/home#/{w}"
        ))),
        // Only an https link is followed; anything else is dropped.
        words().prop_map(|w| Some(format!("http://{w}"))),
        words().prop_map(Some),
    ];
    (
        (
            prop::option::of(digits(12)),
            prop::option::of(words()),
            prop::option::of(words()),
        ),
        (prop::option::of(words()), prop::option::of(words())),
        prop::collection::vec(prop::option::of(amount()), 5..6),
        any::<u8>(),
        prop::collection::vec(cause, 0..4),
        link,
    )
        .prop_map(
            |(
                (account_id, anomaly_id, monitor_name),
                (start_date, end_date),
                impact,
                as_strings,
                root_causes,
                link,
            )| {
                let keys = [
                    "maxImpact",
                    "totalActualSpend",
                    "totalExpectedSpend",
                    "totalImpact",
                    "totalImpactPercentage",
                ];
                let mut impact_json = Map::new();
                for (i, (key, d)) in keys.iter().zip(&impact).enumerate() {
                    if let Some(d) = d {
                        impact_json.insert(
                            (*key).to_owned(),
                            decimal_json(*d, as_strings >> i & 1 == 1),
                        );
                    }
                }
                let mut o = Map::new();
                // What AWS also sends, which nothing reads.
                o.insert(
                    "anomalyScore".into(),
                    json!({"currentScore": 0.47, "maxScore": 0.47}),
                );
                o.insert("dimensionalValue".into(), json!("AWS Lambda"));
                o.insert("subscriptionName".into(), json!("encache-immediate"));
                let mut put = |k: &str, v: &Option<String>| {
                    if let Some(v) = v {
                        o.insert(k.to_owned(), Value::String(v.clone()));
                    }
                };
                put("accountId", &account_id);
                put("anomalyId", &anomaly_id);
                put("monitorName", &monitor_name);
                put("anomalyStartDate", &start_date);
                put("anomalyEndDate", &end_date);
                put("anomalyDetailsLink", &link);
                // An alert carries an anomaly id or an impact (or it is not one).
                if anomaly_id.is_none() || impact.iter().any(Option::is_some) {
                    o.insert("impact".into(), Value::Object(impact_json));
                }
                let causes: Vec<Value> = root_causes
                    .iter()
                    .map(|c| {
                        let mut m = Map::new();
                        for (k, v) in [
                            ("service", &c.service),
                            ("region", &c.region),
                            ("linkedAccount", &c.linked_account),
                            ("usageType", &c.usage_type),
                        ] {
                            if let Some(v) = v {
                                m.insert(k.to_owned(), Value::String(v.clone()));
                            }
                        }
                        Value::Object(m)
                    })
                    .collect();
                o.insert("rootCauses".into(), Value::Array(causes));
                Anomaly {
                    facts: AnomalyAlert {
                        account_id,
                        anomaly_id,
                        monitor_name,
                        start_date,
                        end_date,
                        max_impact: impact[0],
                        total_actual: impact[1],
                        total_expected: impact[2],
                        total_impact: impact[3],
                        impact_percentage: impact[4],
                        root_causes,
                        details_link: link.filter(|l| l.starts_with("https://")),
                    },
                    message: Value::Object(o),
                }
            },
        )
        .boxed()
}

// ---------------------------------------------------------------------------------------
// CloudWatch alarms (JSON)
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Alarm {
    change: AlarmChange,
    message: Value,
    /// `StateChangeTime` as Discord wants it, when the message writes CloudWatch's format.
    discord_time: Option<String>,
}

fn state() -> impl Strategy<Value = AlarmState> {
    prop_oneof![
        3 => Just(AlarmState::Alarm),
        2 => Just(AlarmState::Ok),
        1 => Just(AlarmState::InsufficientData),
        1 => words()
            .prop_filter("not a known state", |w| !["ALARM", "OK", "INSUFFICIENT_DATA"].contains(&w.as_str()))
            .prop_map(AlarmState::Other),
    ]
}

/// A finite threshold with a short decimal text, so the JSON number reads back exactly.
fn threshold() -> impl Strategy<Value = f64> {
    (-1_000_000_000i64..1_000_000_000, 0u32..=3)
        .prop_map(|(m, s)| Decimal::new(m, s).to_string().parse().unwrap())
}

/// How the trigger reaches the message: plain, metric math returning an expression, or
/// metric math returning one metric.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Plain,
    Expression,
    ReturnedMetric,
}

fn trigger() -> BoxedStrategy<(Trigger, Shape)> {
    (
        (
            prop::option::of(words()),
            prop::option::of(words()),
            prop::option::of(prop_oneof![
                prop::sample::select(vec!["Sum", "Average", "Maximum", "SampleCount"])
                    .prop_map(str::to_owned),
                (1u8..100).prop_map(|p| format!("p{p}")),
            ]),
        ),
        prop::collection::vec((words(), words()), 0..4),
        (
            prop::option::of(
                prop::sample::select(vec![
                    "GreaterThanOrEqualToThreshold",
                    "GreaterThanThreshold",
                    "LessThanThreshold",
                    "LessThanOrEqualToThreshold",
                    "LessThanLowerOrGreaterThanUpperThreshold",
                ])
                .prop_map(str::to_owned),
            ),
            prop::option::of(threshold()),
        ),
        (
            prop::option::of(1i64..100_000),
            prop::option::of(1i64..100),
            prop::option::of(1i64..100),
        ),
        (prop::option::of(words()), words()),
        prop_oneof![
            Just(Shape::Plain),
            Just(Shape::Expression),
            Just(Shape::ReturnedMetric)
        ],
    )
        .prop_map(
            |(
                (namespace, metric_name, statistic),
                dimensions,
                (comparison, threshold),
                (period_seconds, evaluation_periods, datapoints_to_alarm),
                (treat_missing_data, expression),
                shape,
            )| {
                let mut t = Trigger {
                    namespace,
                    metric_name,
                    statistic,
                    dimensions,
                    comparison,
                    threshold,
                    period_seconds,
                    evaluation_periods,
                    datapoints_to_alarm,
                    treat_missing_data,
                    expression: None,
                };
                if let Shape::Expression = shape {
                    // A math alarm names no metric of its own; the expression is what alarms.
                    t.namespace = None;
                    t.metric_name = None;
                    t.statistic = None;
                    t.dimensions.clear();
                    t.expression = Some(expression);
                }
                (t, shape)
            },
        )
        .boxed()
}

fn trigger_json(t: &Trigger, shape: Shape, period_as_string: bool) -> Value {
    let opt = |v: &Option<String>| v.as_ref().map_or(Value::Null, |s| Value::String(s.clone()));
    let int = |v: Option<i64>| match v {
        Some(n) if period_as_string => Value::String(n.to_string()),
        Some(n) => json!(n),
        None => Value::Null,
    };
    let dims = |name: &str, value: &str| -> Value {
        Value::Array(
            t.dimensions
                .iter()
                .map(|(k, v)| json!({ name: k, value: v }))
                .collect(),
        )
    };
    let extended = t.statistic.as_deref().is_some_and(|s| s.starts_with('p'));
    let mut o = json!({
        "StatisticType": if extended { "ExtendedStatistic" } else { "Statistic" },
        "Unit": null,
        "ComparisonOperator": opt(&t.comparison),
        "Threshold": t.threshold.map_or(Value::Null, |f| json!(f)),
        "EvaluationPeriods": int(t.evaluation_periods),
        "DatapointsToAlarm": int(t.datapoints_to_alarm),
        "TreatMissingData": opt(&t.treat_missing_data),
        "EvaluateLowSampleCountPercentile": "",
    });
    let stat_key = if extended {
        "ExtendedStatistic"
    } else {
        "Statistic"
    };
    match shape {
        Shape::Plain => {
            o["MetricName"] = opt(&t.metric_name);
            o["Namespace"] = opt(&t.namespace);
            o[stat_key] = opt(&t.statistic);
            o["Dimensions"] = dims("name", "value");
            o["Period"] = int(t.period_seconds);
        }
        Shape::Expression => {
            o["Period"] = int(t.period_seconds);
            o["Metrics"] = json!([
                {"Id": "m1", "ReturnData": false, "MetricStat": {
                    "Metric": {"Namespace": "AWS/ApiGateway", "MetricName": "5xx", "Dimensions": []},
                    "Period": 60, "Stat": "Sum"}},
                {"Id": "e1", "Expression": t.expression, "Label": "rate", "ReturnData": true},
            ]);
        }
        Shape::ReturnedMetric => {
            o["Metrics"] = json!([
                {"Id": "m1", "ReturnData": true, "MetricStat": {
                    "Metric": {"Namespace": opt(&t.namespace), "MetricName": opt(&t.metric_name), "Dimensions": dims("Name", "Value")},
                    "Period": int(t.period_seconds), "Stat": opt(&t.statistic)}},
            ]);
        }
    }
    o
}

/// `2026-11-30T10:00:12.345+0000`, as CloudWatch writes it.
fn change_time() -> impl Strategy<Value = (String, Option<String>)> {
    prop_oneof![
        3 => (0u32..10_000, 1u32..=12, 1u32..=28, 0u32..24, 0u32..60, 0u32..60, 0u32..1000).prop_map(
            |(y, mo, d, h, mi, s, ms)| {
                let head = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}");
                (format!("{head}+0000"), Some(format!("{head}+00:00")))
            }
        ),
        1 => words().prop_map(|w| (w, None)),
    ]
}

fn alarm() -> BoxedStrategy<Alarm> {
    (
        (
            words(),
            prop::option::of(words()),
            digits(12),
            prop::sample::select(vec!["us-east-1", "eu-west-3", "ap-southeast-2"]),
        ),
        (
            state(),
            prop::option::of(state()),
            prop::option::of(words()),
            change_time(),
        ),
        prop_oneof![
            2 => trigger().prop_map(|(t, shape)| (Some((t, shape)), None)),
            1 => words().prop_map(|rule| (None, Some(rule))),
        ],
        (any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                (name, description, account, region),
                (new_state, old_state, reason, (time, discord_time)),
                (trigger, rule),
                (null_description, ints_as_strings),
            )| {
                let arn = format!("arn:aws:cloudwatch:{region}:{account}:alarm:{name}");
                let mut o = json!({
                    "AlarmName": name,
                    "AlarmDescription": description.clone().map_or(
                        if null_description { Value::Null } else { json!("") },
                        Value::String,
                    ),
                    "AWSAccountId": account,
                    "NewStateValue": new_state.label(),
                    "NewStateReason": reason,
                    "StateChangeTime": time,
                    "Region": "US East (N. Virginia)",
                    "AlarmArn": arn,
                    "OKActions": [], "AlarmActions": [], "InsufficientDataActions": [],
                });
                if let Some(old) = &old_state {
                    o["OldStateValue"] = json!(old.label());
                }
                if let Some((t, shape)) = &trigger {
                    o["Trigger"] = trigger_json(t, *shape, ints_as_strings);
                }
                if let Some(r) = &rule {
                    o["AlarmRule"] = json!(r);
                }
                Alarm {
                    change: AlarmChange {
                        name,
                        description,
                        account_id: Some(account),
                        arn: Some(arn),
                        new_state,
                        old_state,
                        reason,
                        state_change_time: Some(time),
                        trigger: trigger.map(|(t, _)| t),
                        rule,
                    },
                    message: o,
                    discord_time,
                }
            },
        )
        .boxed()
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

/// What `forward_alert` builds for a message, without the network.
fn webhook_message(subject: Option<&str>, message: &str) -> WebhookMessage {
    let origin = Origin {
        message_id: "0b5c9a4e-5f2d-4c1e-9b1a-2d3c4e5f6a7b".into(),
        account_id: Some("123456789012".into()),
        timestamp: Some("2026-11-30T10:00:00Z".into()),
    };
    let embed = match CostMessage::classify(subject, message) {
        CostMessage::Alarm(change) => {
            // What a delivery and the embed read from the change.
            let _ = (
                change.dedupe_key(),
                change.region(),
                change.console_url(),
                change.timestamp(),
            );
            render::alarm_embed(&change, &origin)
        }
        CostMessage::Budget(alert) => {
            let why = Enrichment::Unavailable("the Budgets API is not called here".into());
            render::budget_embed(&alert, &why, &origin)
        }
        CostMessage::Anomaly(anomaly) => render::anomaly_embed(&anomaly, &origin),
        CostMessage::Unrecognised { subject, text } => {
            render::unrecognised_embed(subject.as_deref(), &text, &origin)
        }
    };
    WebhookMessage::single(embed, Some("987654321098765432"))
}

fn assert_within_discord_limits(m: &WebhookMessage) -> Result<(), TestCaseError> {
    let chars = |s: &str| s.chars().count();
    let e = &m.embeds[0];
    prop_assert!(
        !e.title.trim().is_empty() && chars(&e.title) <= TITLE_MAX,
        "{:?}",
        e.title
    );
    prop_assert!(chars(&e.description) <= DESCRIPTION_MAX);
    prop_assert!(e.fields.len() <= FIELDS_MAX);
    for f in &e.fields {
        prop_assert!(
            !f.name.trim().is_empty() && chars(&f.name) <= FIELD_NAME_MAX,
            "{:?}",
            f
        );
        prop_assert!(
            !f.value.trim().is_empty() && chars(&f.value) <= FIELD_VALUE_MAX,
            "{:?}",
            f
        );
    }
    prop_assert!(
        e.footer
            .as_ref()
            .is_none_or(|f| chars(&f.text) <= FOOTER_MAX)
    );
    prop_assert!(e.total_chars() <= TOTAL_MAX, "{}", e.total_chars());
    prop_assert!(serde_json::to_string(m).is_ok());
    Ok(())
}

/// Any message: free text, Budgets-like text with any values, JSON of any shape, and the
/// real shapes with some of their values replaced by anything.
fn any_message() -> BoxedStrategy<String> {
    let edits = || prop::collection::vec((any::<Index>(), json_value()), 1..4);
    prop_oneof![
        any_text(0..200),
        budgets_like(),
        budgets().prop_map(|b| b.text),
        json_value().prop_map(|v| v.to_string()),
        (alarm(), edits()).prop_map(|(a, e)| damaged(a.message, e).to_string()),
        (anomaly(), edits()).prop_map(|(a, e)| damaged(a.message, e).to_string()),
        // Cut anywhere: JSON or text that stops short.
        (alarm(), any::<Index>()).prop_map(|(a, cut)| {
            let text: Vec<char> = a.message.to_string().chars().collect();
            text[..cut.index(text.len() + 1)].iter().collect()
        }),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(cases(3000))]

    #[test]
    fn no_message_panics_on_its_way_to_discord_and_every_embed_fits_discords_limits(
        subject in prop::option::of(any_text(0..300)),
        message in any_message(),
    ) {
        // Each parser on its own, whatever `classify` would pick first.
        let _ = (AlarmChange::parse(&message), AnomalyAlert::parse(&message), BudgetAlert::parse(&message));
        let _ = Money::parse(&message);
        assert_within_discord_limits(&webhook_message(subject.as_deref(), &message))?;
    }
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn a_budgets_notification_parses_back_to_the_facts_it_states(b in budgets()) {
        prop_assert_eq!(BudgetAlert::parse(&b.text), Some(b.facts.clone()), "{}", b.text);
        prop_assert_eq!(
            CostMessage::classify(Some("AWS Budgets: alert"), &b.text),
            CostMessage::Budget(b.facts)
        );
    }

    #[test]
    fn a_cost_anomaly_alert_parses_back_to_the_facts_it_carries(a in anomaly()) {
        let message = a.message.to_string();
        prop_assert_eq!(AnomalyAlert::parse(&message), Some(a.facts.clone()), "{}", message);
        prop_assert_eq!(CostMessage::classify(None, &message), CostMessage::Anomaly(a.facts));
    }

    #[test]
    fn a_cloudwatch_alarm_parses_back_to_the_state_change_it_describes(a in alarm()) {
        let message = a.message.to_string();
        let parsed = AlarmChange::parse(&message);
        prop_assert_eq!(parsed.clone(), Some(a.change.clone()), "{}", message);
        let parsed = parsed.unwrap();
        prop_assert_eq!(CostMessage::classify(None, &message), CostMessage::Alarm(a.change.clone()));
        // What is read from it: one key per change, the region, the console link to
        // this alarm, and the time as Discord wants it.
        prop_assert_eq!(
            parsed.dedupe_key(),
            format!("alarm:{}:{}:{}", a.change.arn.as_deref().unwrap(), a.change.new_state.label(), a.change.state_change_time.as_deref().unwrap())
        );
        let region = a.change.arn.as_deref().unwrap().split(':').nth(3).unwrap();
        prop_assert_eq!(parsed.region(), Some(region));
        let url = parsed.console_url();
        let linked = url.rsplit_once("#alarmsV2:alarm/").unwrap().1;
        prop_assert_eq!(percent_encoding::percent_decode_str(linked).decode_utf8().unwrap(), a.change.name.as_str());
        if let Some(discord) = &a.discord_time {
            prop_assert_eq!(parsed.timestamp(), Some(discord.clone()));
        }
    }
}

proptest! {
    #![proptest_config(cases(5000))]

    #[test]
    fn an_amount_parses_back_from_how_it_is_shown(
        mantissa in -(1i128 << 96) + 1..(1i128 << 96),
        scale in 0u32..=28,
        unit in prop::sample::select(vec!["USD", "EUR", "JPY"]),
    ) {
        let money = Money::new(Decimal::from_i128_with_scale(mantissa, scale), unit);
        let shown = money.to_string();
        prop_assert_eq!(Money::parse(&shown), Some(money), "{}", shown);
    }
}
