//! Business metrics as CloudWatch Embedded Metric Format lines: one JSON object per line on
//! stdout, which CloudWatch Logs turns into metrics in the `encache` namespace (no API
//! call, no extra latency, nothing to fail). Dimension `Env` (from `ENCACHE_ENV`) and
//! `Function` (`AWS_LAMBDA_FUNCTION_NAME`), plus the metric's own properties.

use serde_json::{Map, Value, json};

pub const NAMESPACE: &str = "encache";

/// The EMF document for one metric: `name` = `value` (a count), with `properties` kept as
/// searchable fields of the log line (not dimensions, so they add no metric cardinality).
pub fn document(
    name: &str,
    value: f64,
    properties: &[(&str, &str)],
    env: &str,
    function: &str,
    timestamp_ms: u128,
) -> Value {
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms as u64,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Env", "Function"]],
                "Metrics": [{"Name": name, "Unit": "Count"}]
            }]
        }),
    );
    doc.insert("Env".into(), json!(env));
    doc.insert("Function".into(), json!(function));
    for (k, v) in properties {
        doc.insert((*k).into(), json!(v));
    }
    doc.insert(name.into(), json!(value));
    Value::Object(doc)
}

/// Writes one count metric (`uploads_completed`, `alerts_forwarded`, ...) as an EMF line.
pub fn count(name: &str, value: u64, properties: &[(&str, &str)]) {
    let env = std::env::var("ENCACHE_ENV").unwrap_or_else(|_| "unknown".into());
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "unknown".into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let line = document(name, value as f64, properties, &env, &function, now);
    // One line, straight to stdout: the tracing subscriber would wrap it in its own JSON.
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_what_cloudwatch_extracts_a_metric_from() {
        let d = document(
            "uploads_completed",
            2.0,
            &[("outcome", "ready")],
            "dev",
            "encache-dev-UploadComplete",
            1_700_000_000_123,
        );
        let m = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["_aws"]["Timestamp"], 1_700_000_000_123u64);
        assert_eq!(m["Namespace"], "encache");
        // every dimension and metric named in the directive is a top-level member
        for dim in m["Dimensions"][0].as_array().unwrap() {
            assert!(d.get(dim.as_str().unwrap()).is_some(), "{dim}");
        }
        assert_eq!(
            m["Metrics"][0],
            json!({"Name": "uploads_completed", "Unit": "Count"})
        );
        assert_eq!(d["uploads_completed"], 2.0);
        assert_eq!(d["outcome"], "ready");
        assert_eq!(d["Env"], "dev");
        // and it is one line
        assert!(!d.to_string().contains('\n'));
    }
}
