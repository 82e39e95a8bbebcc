//! Parsing a trigger's raw JSON into its `aws_lambda_events` type, with errors that say
//! exactly what is wrong with the event.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::TriggerError;

/// Checks `triggerSource` against the sources this function handles, then parses the
/// whole event.
pub(crate) fn parse<T: DeserializeOwned>(
    event: Value,
    handled: &[&str],
) -> Result<T, TriggerError> {
    let Some(object) = event.as_object() else {
        return Err(TriggerError::invalid("the event is not a JSON object"));
    };
    match object.get("triggerSource") {
        Some(Value::String(source)) if handled.contains(&source.as_str()) => {}
        Some(Value::String(source)) => {
            return Err(TriggerError::invalid(format!(
                "unexpected triggerSource {source:?}; this function handles {}",
                handled.join(", ")
            )));
        }
        _ => return Err(TriggerError::invalid("triggerSource is missing")),
    }
    serde_path_to_error::deserialize(event).map_err(|e| {
        let path = e.path().to_string();
        TriggerError::invalid(format!("{path}: {}", e.into_inner()))
    })
}

/// A required, non-blank user attribute.
pub(crate) fn attribute<'a>(
    attributes: &'a HashMap<String, String>,
    name: &str,
) -> Result<&'a str, TriggerError> {
    attributes
        .get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| TriggerError::invalid(format!("request.userAttributes.{name} is missing")))
}

/// Cognito's `sub`: the immutable user id, 1..=128 characters in the users table.
pub(crate) fn sub(attributes: &HashMap<String, String>) -> Result<&str, TriggerError> {
    let sub = attribute(attributes, "sub")?;
    if sub.len() > 128 {
        return Err(TriggerError::invalid(
            "request.userAttributes.sub is longer than 128 characters",
        ));
    }
    Ok(sub)
}
