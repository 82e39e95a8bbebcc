//! Template parameter values as a deploy gives them, instead of from `sam-env.local.json`:
//! the `--parameter-overrides` string `sam deploy` gets (`scripts/deploy.sh` builds one
//! string and hands it to either), each parameter's `Default` otherwise, and every
//! `AWS::SSM::Parameter::Value<...>` parameter resolved from SSM the way CloudFormation
//! resolves it at deploy time. A parameter SSM does not have fails here, naming it, as
//! the real deploy would fail.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, bail};

use crate::template::Template;

/// `Key=Value Key2="a value with spaces"`: SAM's `--parameter-overrides` form.
pub fn parse_overrides(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') || key.is_empty() {
            bail!("parameter overrides: expected Key=Value, found {key:?}");
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => bail!("parameter overrides: unterminated quote in {key}"),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.insert(key, value);
    }
    Ok(out)
}

/// Each template parameter's deploy-time value: override, else `Default`; SSM-typed
/// ones are the value of the SSM parameter so named.
pub async fn parameter_values(
    template: &Template,
    overrides: &BTreeMap<String, String>,
    ssm: &aws_sdk_ssm::Client,
) -> anyhow::Result<HashMap<String, String>> {
    let unknown: Vec<&String> = overrides
        .keys()
        .filter(|k| !template.parameters.contains_key(*k))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "parameter overrides name {} that the template does not declare",
            unknown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut values = HashMap::new();
    // SSM name -> the parameters reading it (two may read one name).
    let mut ssm_names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut missing_value = Vec::new();
    for (name, def) in &template.parameters {
        let raw = overrides.get(name).cloned().or_else(|| {
            def.default.as_ref().and_then(|d| match d {
                serde_yaml::Value::String(s) => Some(s.clone()),
                serde_yaml::Value::Number(n) => Some(n.to_string()),
                serde_yaml::Value::Bool(b) => Some(b.to_string()),
                _ => None,
            })
        });
        match raw {
            None => missing_value.push(name.clone()),
            Some(raw) if def.is_ssm() => {
                ssm_names.entry(raw).or_default().push(name.clone());
            }
            Some(raw) => {
                values.insert(name.clone(), raw);
            }
        }
    }
    if !missing_value.is_empty() {
        bail!(
            "template parameter(s) {} have no default and no override",
            missing_value.join(", ")
        );
    }
    let names: Vec<String> = ssm_names.keys().cloned().collect();
    for chunk in names.chunks(10) {
        let out = ssm
            .get_parameters()
            .set_names(Some(chunk.to_vec()))
            .send()
            .await
            .context("reading the template's SSM parameters")?;
        for p in out.parameters() {
            if let (Some(n), Some(v)) = (p.name(), p.value())
                && let Some(params) = ssm_names.get(n)
            {
                for param in params {
                    values.insert(param.clone(), v.to_owned());
                }
            }
        }
    }
    let unresolved: Vec<String> = ssm_names
        .iter()
        .flat_map(|(ssm_name, params)| params.iter().map(move |p| (ssm_name, p)))
        .filter(|(_, param)| !values.contains_key(*param))
        .map(|(ssm_name, param)| format!("{param} (SSM parameter {ssm_name})"))
        .collect();
    if !unresolved.is_empty() {
        bail!(
            "{} template parameter(s) read SSM parameters that do not exist (CloudFormation \
             would fail the deploy): {}",
            unresolved.len(),
            unresolved.join(", ")
        );
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_plain_and_quoted_values() {
        let o = parse_overrides(r#"Env=dev  LogLevel=WARN Cors="a b" Empty= X="q\"uote""#)
            .expect("parses");
        assert_eq!(o["Env"], "dev");
        assert_eq!(o["LogLevel"], "WARN");
        assert_eq!(o["Cors"], "a b");
        assert_eq!(o["Empty"], "");
        assert_eq!(o["X"], "q\"uote");
    }

    #[test]
    fn an_override_without_a_value_is_refused() {
        assert!(parse_overrides("Env").is_err());
        assert!(parse_overrides("A=\"open").is_err());
    }
}
