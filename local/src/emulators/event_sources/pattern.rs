//! EventBridge event patterns, matched as EventBridge matches them: every field the
//! pattern names must match (nested objects recursively, `$or` for alternatives), a field
//! matches when any of its values (an array in the event: any element) equals one of the
//! pattern's values or passes one of its content filters: `prefix`, `suffix`,
//! `equals-ignore-case`, `anything-but` (values, `prefix`, `suffix`), `numeric`,
//! `exists`, `wildcard`. `cidr` is rejected as unsupported, by name.

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid event pattern: {0}")]
pub struct PatternError(pub String);

/// Checks that `pattern` is a pattern this matcher understands, naming what is not.
pub fn validate(pattern: &Value) -> Result<(), PatternError> {
    // Matching against an empty event visits every branch of the pattern.
    fn walk(p: &Value) -> Result<(), PatternError> {
        let obj = p
            .as_object()
            .ok_or_else(|| PatternError(format!("{p} is not an object")))?;
        for (key, v) in obj {
            if key == "$or" {
                let alts = v
                    .as_array()
                    .ok_or_else(|| PatternError("$or takes an array of patterns".into()))?;
                alts.iter().try_for_each(walk)?;
            } else if v.is_object() {
                walk(v)?;
            } else if let Some(values) = v.as_array() {
                for item in values {
                    if item.is_object() {
                        filter_matches(item, None)?;
                    }
                }
            } else {
                return Err(PatternError(format!(
                    "the value of {key} must be an array or an object, not {v}"
                )));
            }
        }
        Ok(())
    }
    walk(pattern)
}

/// True when `event` matches `pattern`; an error names a filter this matcher lacks.
pub fn matches(pattern: &Value, event: &Value) -> Result<bool, PatternError> {
    let obj = pattern
        .as_object()
        .ok_or_else(|| PatternError(format!("{pattern} is not an object")))?;
    for (key, expected) in obj {
        let ok = if key == "$or" {
            let alts = expected
                .as_array()
                .ok_or_else(|| PatternError("$or takes an array of patterns".into()))?;
            let mut any = false;
            for alt in alts {
                any |= matches(alt, event)?;
            }
            any
        } else {
            let actual = event.get(key);
            match expected {
                Value::Object(_) => match actual {
                    Some(inner @ Value::Object(_)) => matches(expected, inner)?,
                    _ => false,
                },
                Value::Array(allowed) => field_matches(allowed, actual)?,
                other => {
                    return Err(PatternError(format!(
                        "the value of {key} must be an array or an object, not {other}"
                    )));
                }
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One leaf: the event's value(s) at that key against the pattern's allowed list.
fn field_matches(allowed: &[Value], actual: Option<&Value>) -> Result<bool, PatternError> {
    let values: Vec<&Value> = match actual {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v) => vec![v],
        None => vec![],
    };
    for rule in allowed {
        if let Some(obj) = rule.as_object()
            && let Some(exists) = obj.get("exists")
        {
            let want = exists
                .as_bool()
                .ok_or_else(|| PatternError("exists takes true or false".into()))?;
            // `exists` concerns leaves: an object or an empty array is not a value.
            let present = !values.is_empty() && values.iter().all(|v| !v.is_object());
            if want == present {
                return Ok(true);
            }
            continue;
        }
        for v in &values {
            let hit = if rule.is_object() {
                filter_matches(rule, Some(v))?
            } else {
                scalar_eq(rule, v)
            };
            if hit {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// A content filter (`{"prefix": "x"}`, ...) against one value; with `None` only checks
/// the filter's shape.
fn filter_matches(rule: &Value, value: Option<&Value>) -> Result<bool, PatternError> {
    let obj = rule.as_object().expect("called with an object");
    let (name, arg) = match obj.iter().next() {
        Some(kv) if obj.len() == 1 => kv,
        _ => {
            return Err(PatternError(format!(
                "a content filter has exactly one key: {rule}"
            )));
        }
    };
    let s = value.and_then(Value::as_str);
    let string_arg = |what: &str| {
        arg.as_str()
            .ok_or_else(|| PatternError(format!("{what} takes a string: {rule}")))
    };
    Ok(match name.as_str() {
        "prefix" => match arg {
            Value::Object(inner) => match inner.get("equals-ignore-case").and_then(Value::as_str) {
                Some(p) => s.is_some_and(|s| s.to_lowercase().starts_with(&p.to_lowercase())),
                None => return Err(PatternError(format!("unsupported prefix filter {rule}"))),
            },
            _ => {
                let p = string_arg("prefix")?;
                s.is_some_and(|s| s.starts_with(p))
            }
        },
        "suffix" => match arg {
            Value::Object(inner) => match inner.get("equals-ignore-case").and_then(Value::as_str) {
                Some(p) => s.is_some_and(|s| s.to_lowercase().ends_with(&p.to_lowercase())),
                None => return Err(PatternError(format!("unsupported suffix filter {rule}"))),
            },
            _ => {
                let p = string_arg("suffix")?;
                s.is_some_and(|s| s.ends_with(p))
            }
        },
        "equals-ignore-case" => {
            let p = string_arg("equals-ignore-case")?;
            s.is_some_and(|s| s.to_lowercase() == p.to_lowercase())
        }
        "wildcard" => {
            let p = string_arg("wildcard")?;
            s.is_some_and(|s| wildcard(p, s))
        }
        "numeric" => {
            let ranges = numeric_ranges(arg, rule)?;
            value
                .and_then(Value::as_f64)
                .is_some_and(|n| ranges.iter().all(|(op, bound)| op.holds(n, *bound)))
        }
        "anything-but" => match arg {
            Value::Array(list) => value.is_some_and(|v| !list.iter().any(|x| scalar_eq(x, v))),
            Value::Object(_) => {
                // anything-but a prefix / suffix: the inner filter must *not* match; a
                // value that is not a string never matches either way.
                let inner = filter_matches(arg, value)?;
                s.is_some() && !inner
            }
            scalar => value.is_some_and(|v| !scalar_eq(scalar, v)),
        },
        "cidr" => {
            return Err(PatternError(format!(
                "the cidr filter is not supported locally: {rule}"
            )));
        }
        other => {
            return Err(PatternError(format!(
                "unknown content filter {other}: {rule}"
            )));
        }
    })
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    fn holds(self, n: f64, bound: f64) -> bool {
        match self {
            Op::Lt => n < bound,
            Op::Le => n <= bound,
            Op::Eq => n == bound,
            Op::Ge => n >= bound,
            Op::Gt => n > bound,
        }
    }
}

fn numeric_ranges(arg: &Value, rule: &Value) -> Result<Vec<(Op, f64)>, PatternError> {
    let bad = || PatternError(format!("numeric takes [op, number, ...]: {rule}"));
    let items = arg.as_array().ok_or_else(bad)?;
    if items.is_empty() || items.len() % 2 != 0 {
        return Err(bad());
    }
    items
        .chunks(2)
        .map(|pair| {
            let op = match pair[0].as_str() {
                Some("<") => Op::Lt,
                Some("<=") => Op::Le,
                Some("=") => Op::Eq,
                Some(">=") => Op::Ge,
                Some(">") => Op::Gt,
                _ => return Err(bad()),
            };
            Ok((op, pair[1].as_f64().ok_or_else(bad)?))
        })
        .collect()
}

/// `*` matches any run of characters (EventBridge's `wildcard` filter).
fn wildcard(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stack_event() -> Value {
        json!({
            "version": "0", "source": "aws.cloudformation",
            "detail-type": "CloudFormation Stack Status Change",
            "resources": ["arn:aws:cloudformation:us-east-1:1:stack/s/local"],
            "detail": {"status-details": {"status": "UPDATE_COMPLETE"}, "size": 42,
                       "tags": ["a", "b"], "empty": null}
        })
    }

    fn m(pattern: Value) -> bool {
        matches(&pattern, &stack_event()).expect("a valid pattern")
    }

    #[test]
    fn exact_values_nested_fields_and_arrays_in_the_event() {
        assert!(m(json!({"source": ["aws.cloudformation"],
            "resources": ["arn:aws:cloudformation:us-east-1:1:stack/s/local"],
            "detail": {"status-details": {"status": ["CREATE_COMPLETE", "UPDATE_COMPLETE"]}}})));
        assert!(!m(
            json!({"detail": {"status-details": {"status": ["CREATE_COMPLETE"]}}})
        ));
        assert!(!m(json!({"source": ["aws.s3"]})));
        assert!(m(json!({"detail": {"tags": ["b"]}})));
        assert!(m(json!({"detail": {"size": [42.0]}})));
        assert!(m(json!({"detail": {"empty": [null]}})));
        assert!(
            !m(json!({"detail": {"missing": {"deeper": ["x"]}}})),
            "a nested pattern needs the object"
        );
        assert!(m(json!({})), "an empty pattern matches everything");
    }

    #[test]
    fn prefix_suffix_ignore_case_and_wildcard() {
        assert!(m(json!({"source": [{"prefix": "aws."}]})));
        assert!(!m(json!({"source": [{"prefix": "custom."}]})));
        assert!(m(json!({"detail-type": [{"suffix": "Change"}]})));
        assert!(m(
            json!({"source": [{"prefix": {"equals-ignore-case": "AWS."}}]})
        ));
        assert!(m(
            json!({"detail-type": [{"equals-ignore-case": "cloudformation stack status change"}]})
        ));
        assert!(m(
            json!({"resources": [{"wildcard": "arn:*:stack/*/local"}]})
        ));
        assert!(!m(
            json!({"resources": [{"wildcard": "arn:*:stack/*/other"}]})
        ));
    }

    #[test]
    fn anything_but_values_and_prefixes() {
        assert!(m(
            json!({"source": [{"anything-but": ["aws.s3", "aws.ec2"]}]})
        ));
        assert!(!m(
            json!({"source": [{"anything-but": ["aws.cloudformation"]}]})
        ));
        assert!(!m(
            json!({"source": [{"anything-but": "aws.cloudformation"}]})
        ));
        assert!(!m(
            json!({"source": [{"anything-but": {"prefix": "aws."}}]})
        ));
        assert!(m(json!({"source": [{"anything-but": {"prefix": "my."}}]})));
        assert!(
            !m(json!({"detail": {"nope": [{"anything-but": ["x"]}]}})),
            "a missing field is not anything-but"
        );
    }

    #[test]
    fn numeric_ranges_and_exists() {
        assert!(m(
            json!({"detail": {"size": [{"numeric": [">", 0, "<=", 42]}]}})
        ));
        assert!(!m(json!({"detail": {"size": [{"numeric": [">", 42]}]}})));
        assert!(m(json!({"detail": {"size": [{"numeric": ["=", 42]}]}})));
        assert!(
            !m(json!({"source": [{"numeric": [">", 0]}]})),
            "a string is not a number"
        );
        assert!(m(json!({"detail": {"size": [{"exists": true}]}})));
        assert!(m(json!({"detail": {"absent": [{"exists": false}]}})));
        assert!(!m(json!({"detail": {"absent": [{"exists": true}]}})));
        assert!(!m(json!({"detail": {"size": [{"exists": false}]}})));
    }

    #[test]
    fn or_alternatives() {
        assert!(m(
            json!({"$or": [{"source": ["x"]}, {"detail": {"size": [42]}}]})
        ));
        assert!(!m(
            json!({"$or": [{"source": ["x"]}, {"detail": {"size": [1]}}]})
        ));
    }

    #[test]
    fn unsupported_or_malformed_filters_are_named() {
        let e = matches(
            &json!({"source": [{"cidr": "10.0.0.0/24"}]}),
            &json!({"source": "10.0.0.1"}),
        )
        .expect_err("cidr");
        assert!(e.to_string().contains("cidr"), "{e}");
        assert!(validate(&json!({"source": "aws.s3"})).is_err());
        assert!(validate(&json!({"a": [{"numeric": [">"]}]})).is_err());
        assert!(validate(&json!({"a": [{"bogus": 1}]})).is_err());
        assert!(validate(&json!({"detail": {"a": [{"prefix": "x"}, "y"]}})).is_ok());
    }
}
