//! The plan: which parameters to create, update or delete so that SSM mirrors the
//! stack's outputs — and which outputs cannot be synced, and why. Pure: no I/O.

use std::collections::BTreeMap;

use serde::Serialize;

/// Standard-tier parameters hold at most 4,096 characters.
pub const MAX_VALUE_CHARS: usize = 4096;
/// The longest parameter name SSM lets us create (2,048 minus 1,037 reserved).
pub const MAX_NAME_CHARS: usize = 1011;
/// Parameter hierarchies are at most fifteen levels deep.
pub const MAX_NAME_LEVELS: usize = 15;

/// One stack output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub key: String,
    pub value: String,
}

/// Who owns an existing parameter under the prefix, read from its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// Tagged by stack-sync for this stack: ours to update and delete.
    Managed,
    /// Untagged, or synced for another stack: never touched.
    Foreign,
}

/// One parameter that already exists under the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub value: String,
    pub ownership: Ownership,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Delete,
    Unchanged,
    /// The output breaks SSM's rules; it is reported and not written.
    Invalid,
    /// A parameter stack-sync did not create already has this name; left alone.
    Conflict,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Create,
        Action::Update,
        Action::Delete,
        Action::Unchanged,
        Action::Invalid,
        Action::Conflict,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Unchanged => "unchanged",
            Action::Invalid => "invalid",
            Action::Conflict => "conflict",
        }
    }

    /// Does this action call SSM?
    pub fn writes(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Delete)
    }
}

/// What happens to one parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub output_key: String,
    pub parameter: String,
    pub action: Action,
    /// The value to write (create/update); never serialized into logs or responses.
    #[serde(skip)]
    pub value: Option<String>,
    /// Why an output is invalid or in conflict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
}

/// Compares the stack's outputs with what exists under `prefix` (keyed by full name).
/// Outputs come first in their stack order, then deletions in name order.
pub fn compute(prefix: &str, outputs: &[Output], existing: &BTreeMap<String, Existing>) -> Plan {
    let mut changes = Vec::with_capacity(outputs.len());
    let mut wanted = std::collections::HashSet::new();
    for output in outputs {
        let parameter = format!("{prefix}{}", output.key);
        wanted.insert(parameter.clone());
        let mut change = Change {
            output_key: output.key.clone(),
            parameter: parameter.clone(),
            action: Action::Unchanged,
            value: None,
            reason: None,
        };
        if let Err(reason) = validate_key(&output.key)
            .and_then(|()| validate_name(&parameter))
            .and_then(|()| validate_value(&output.value))
        {
            change.action = Action::Invalid;
            change.reason = Some(reason);
            changes.push(change);
            continue;
        }
        change.action = match existing.get(&parameter) {
            None => Action::Create,
            Some(e) if e.ownership == Ownership::Foreign => {
                change.reason = Some(
                    "a parameter stack-sync did not create already has this name; it is left alone"
                        .into(),
                );
                Action::Conflict
            }
            Some(e) if e.value == output.value => Action::Unchanged,
            Some(_) => Action::Update,
        };
        if matches!(change.action, Action::Create | Action::Update) {
            change.value = Some(output.value.clone());
        }
        changes.push(change);
    }
    for (name, e) in existing {
        if e.ownership == Ownership::Managed && !wanted.contains(name) {
            changes.push(Change {
                output_key: name.strip_prefix(prefix).unwrap_or(name).to_owned(),
                parameter: name.clone(),
                action: Action::Delete,
                value: None,
                reason: None,
            });
        }
    }
    Plan { changes }
}

/// An output key becomes one level of the name: no `/`, only SSM's name characters.
pub fn validate_key(key: &str) -> Result<(), String> {
    validate_level(key).map_err(|e| format!("the output key {e}"))
}

/// One level of a parameter name (an output key, an environment).
pub fn validate_level(level: &str) -> Result<(), String> {
    if level.is_empty() {
        return Err("is empty".into());
    }
    if let Some(c) = level.chars().find(|c| !is_name_char(*c)) {
        return Err(format!(
            "contains {c:?}; parameter names allow only a-z A-Z 0-9 _ . -"
        ));
    }
    Ok(())
}

/// SSM's naming rules: `a-zA-Z0-9_.-` and `/`, no `aws`/`ssm` prefix, length and depth.
pub fn validate_name(name: &str) -> Result<(), String> {
    if let Some(c) = name.chars().find(|c| !is_name_char(*c) && *c != '/') {
        return Err(format!(
            "parameter name {name:?} contains {c:?}; allowed are a-z A-Z 0-9 _ . - /"
        ));
    }
    let len = name.chars().count();
    if len > MAX_NAME_CHARS {
        return Err(format!(
            "parameter name is {len} characters; SSM allows at most {MAX_NAME_CHARS}"
        ));
    }
    let levels = name.split('/').filter(|s| !s.is_empty()).count();
    if levels > MAX_NAME_LEVELS {
        return Err(format!(
            "parameter name has {levels} levels; SSM allows at most {MAX_NAME_LEVELS}"
        ));
    }
    let first = name.trim_start_matches('/').to_ascii_lowercase();
    if first.starts_with("aws") || first.starts_with("ssm") {
        return Err(format!(
            "parameter name {name:?} may not begin with \"aws\" or \"ssm\""
        ));
    }
    Ok(())
}

/// A standard-tier String value: 1 to 4,096 characters, no `{{...}}` (SSM refuses
/// values that look like a reference to another parameter).
pub fn validate_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("the output value is empty; SSM parameters need at least one character".into());
    }
    let len = value.chars().count();
    if len > MAX_VALUE_CHARS {
        return Err(format!(
            "the output value is {len} characters; standard-tier parameters hold at most {MAX_VALUE_CHARS}"
        ));
    }
    if let Some(open) = value.find("{{")
        && value[open..].contains("}}")
    {
        return Err(
            "the output value contains {{...}}, which SSM reads as a parameter reference".into(),
        );
    }
    Ok(())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "/encache/dev/stack/";

    fn out(key: &str, value: &str) -> Output {
        Output {
            key: key.into(),
            value: value.into(),
        }
    }

    fn existing(pairs: &[(&str, &str, Ownership)]) -> BTreeMap<String, Existing> {
        pairs
            .iter()
            .map(|(k, v, o)| {
                (
                    format!("{PREFIX}{k}"),
                    Existing {
                        value: (*v).into(),
                        ownership: o.clone(),
                    },
                )
            })
            .collect()
    }

    fn actions(plan: &Plan) -> Vec<(String, Action)> {
        plan.changes
            .iter()
            .map(|c| (c.output_key.clone(), c.action))
            .collect()
    }

    #[test]
    fn new_outputs_are_created_and_equal_ones_left_unchanged() {
        let plan = compute(
            PREFIX,
            &[out("ApiUrl", "https://a"), out("Topic", "arn:t")],
            &existing(&[("ApiUrl", "https://a", Ownership::Managed)]),
        );
        assert_eq!(
            actions(&plan),
            vec![
                ("ApiUrl".into(), Action::Unchanged),
                ("Topic".into(), Action::Create)
            ]
        );
        assert_eq!(plan.changes[1].value.as_deref(), Some("arn:t"));
        assert_eq!(plan.changes[1].parameter, "/encache/dev/stack/Topic");
    }

    #[test]
    fn a_changed_output_updates_and_a_vanished_managed_one_is_deleted() {
        let plan = compute(
            PREFIX,
            &[out("ApiUrl", "https://new")],
            &existing(&[
                ("ApiUrl", "https://old", Ownership::Managed),
                ("Gone", "x", Ownership::Managed),
            ]),
        );
        assert_eq!(
            actions(&plan),
            vec![
                ("ApiUrl".into(), Action::Update),
                ("Gone".into(), Action::Delete)
            ]
        );
    }

    #[test]
    fn parameters_stack_sync_did_not_create_are_never_deleted_or_overwritten() {
        let plan = compute(
            PREFIX,
            &[out("Manual", "new")],
            &existing(&[
                ("Manual", "old", Ownership::Foreign),
                ("Other", "x", Ownership::Foreign),
            ]),
        );
        assert_eq!(actions(&plan), vec![("Manual".into(), Action::Conflict)]);
        assert_eq!(plan.changes[0].value, None);
    }

    #[test]
    fn an_over_long_value_is_invalid_and_the_rest_still_planned() {
        let long = "x".repeat(MAX_VALUE_CHARS + 1);
        let plan = compute(
            PREFIX,
            &[out("Big", &long), out("Small", "ok")],
            &BTreeMap::new(),
        );
        assert_eq!(plan.changes[0].action, Action::Invalid);
        assert!(plan.changes[0].reason.as_ref().unwrap().contains("4097"));
        assert_eq!(plan.changes[1].action, Action::Create);
    }

    #[test]
    fn a_value_of_exactly_the_limit_is_valid() {
        assert!(validate_value(&"é".repeat(MAX_VALUE_CHARS)).is_ok());
    }

    #[test]
    fn names_follow_ssm_rules() {
        assert!(validate_key("Api.Url_2-b").is_ok());
        assert!(validate_key("a/b").is_err());
        assert!(validate_key("a b").is_err());
        assert!(validate_key("").is_err());
        assert!(validate_name("/encache/dev/stack/ApiUrl").is_ok());
        assert!(validate_name("/aws/x").is_err());
        assert!(validate_name(&format!("/{}", "a/".repeat(16))).is_err());
        assert!(validate_name(&format!("/{}", "a".repeat(MAX_NAME_CHARS))).is_err());
    }

    #[test]
    fn empty_values_and_parameter_references_are_invalid() {
        assert!(validate_value("").is_err());
        assert!(validate_value("{{ssm:/x}}").is_err());
        assert!(validate_value("{\"a\":{\"b\":1}}").is_ok());
    }
}
