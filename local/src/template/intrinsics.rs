//! The intrinsic functions: recognising `!Name arg` / `{"Fn::Name": arg}` in raw YAML, the
//! ids a value refers to, and evaluating `Fn::*` and `!Sub` with a [`Resolver`].

use std::collections::BTreeSet;

use serde_json::Value as Json;
use serde_yaml::{Mapping, Value};

use super::resolve::{Resolver, Unresolved, json_scalar};

/// The logical id named by `!Ref X` / `{Ref: X}`.
pub fn ref_target(v: &Value) -> Option<String> {
    match intrinsic(v) {
        Some(("Ref", arg)) => arg.as_str().map(Into::into),
        _ => None,
    }
}

/// Every logical id (or parameter) a value refers to: `!Ref X`, `!GetAtt X.Attr` and the
/// `${X}` / `${X.Attr}` of `!Sub`, at any depth.
pub fn referenced_ids(v: &Value) -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match intrinsic(v) {
            Some(("Ref", arg)) => {
                // `!Ref Fn.Alias` / `!Ref Fn.Version` (SAM) refer to the function.
                if let Some(s) = arg.as_str() {
                    out.insert(s.split('.').next().unwrap_or_default().to_owned());
                }
            }
            Some(("GetAtt", arg)) => match arg {
                Value::String(s) => {
                    out.insert(s.split('.').next().unwrap_or_default().to_owned());
                }
                other => walk(other, out),
            },
            Some(("Sub", arg)) => {
                let (text, vars) = match arg {
                    Value::Sequence(s) => (s.first().and_then(Value::as_str), s.get(1)),
                    other => (other.as_str(), None),
                };
                let mut rest = text.unwrap_or_default();
                while let Some(start) = rest.find("${") {
                    let after = &rest[start + 2..];
                    let Some(end) = after.find('}') else { break };
                    let name = &after[..end];
                    if !name.starts_with('!') {
                        out.insert(name.split('.').next().unwrap_or_default().to_owned());
                    }
                    rest = &after[end + 1..];
                }
                if let Some(vars) = vars {
                    walk(vars, out);
                }
            }
            Some((_, arg)) => walk(arg, out),
            None => match v {
                Value::Sequence(items) => items.iter().for_each(|i| walk(i, out)),
                Value::Mapping(m) => m.values().for_each(|i| walk(i, out)),
                Value::Tagged(t) => walk(&t.value, out),
                _ => {}
            },
        }
    }
    let mut out = BTreeSet::new();
    walk(v, &mut out);
    out
}

/// `!Name arg` or `{"Fn::Name": arg}` / `{"Ref": arg}` → ("Name", arg).
pub(super) fn intrinsic(v: &Value) -> Option<(&str, &Value)> {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            // Map onto the static names below so the borrow is tied to `v`.
            INTRINSICS
                .iter()
                .find(|n| **n == name)
                .map(|n| (*n, &t.value))
        }
        Value::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            let k = k.as_str()?;
            let name = k.strip_prefix("Fn::").unwrap_or(k);
            if k != "Ref" && !k.starts_with("Fn::") && k != "Condition" {
                return None;
            }
            INTRINSICS.iter().find(|n| **n == name).map(|n| (*n, arg))
        }
        _ => None,
    }
}

const INTRINSICS: &[&str] = &[
    "Ref",
    "Sub",
    "GetAtt",
    "Join",
    "Select",
    "Split",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "Condition",
    "FindInMap",
    "ImportValue",
    "Base64",
    "GetAZs",
];

impl Resolver<'_> {
    /// `Fn::<name>` applied to its (raw) argument.
    pub(super) fn intrinsic(&self, name: &str, arg: &Value) -> Result<Json, Unresolved> {
        let seq = |n: usize| -> Result<&Vec<Value>, Unresolved> {
            arg.as_sequence()
                .filter(|s| s.len() >= n)
                .ok_or_else(|| Unresolved(format!("Fn::{name} needs a list of {n}")))
        };
        match name {
            "Ref" => {
                let target = arg.as_str().unwrap_or_default();
                if target == "AWS::NoValue" {
                    return Ok(Json::Null);
                }
                self.ref_value(target)
            }
            "GetAtt" => {
                let (id, attr) = match arg {
                    Value::String(s) => s
                        .split_once('.')
                        .map(|(a, b)| (a.to_owned(), b.to_owned()))
                        .ok_or_else(|| Unresolved(format!("bad !GetAtt {s}")))?,
                    Value::Sequence(s) if s.len() == 2 => {
                        (self.string(&s[0])?, self.string(&s[1])?)
                    }
                    _ => return Err(Unresolved("bad !GetAtt".into())),
                };
                self.get_att(&id, &attr)
            }
            "Sub" => {
                let (text, vars) = match arg {
                    Value::String(s) => (s.clone(), None),
                    Value::Sequence(s) if !s.is_empty() => (
                        s[0].as_str().unwrap_or_default().to_owned(),
                        s.get(1).and_then(Value::as_mapping),
                    ),
                    _ => return Err(Unresolved("bad !Sub".into())),
                };
                self.sub(&text, vars).map(Json::String)
            }
            "Join" => {
                let s = seq(2)?;
                let sep = self.string(&s[0])?;
                Ok(Json::String(self.list(&s[1])?.join(&sep)))
            }
            "Select" => {
                let s = seq(2)?;
                let i: usize = self
                    .string(&s[0])?
                    .parse()
                    .map_err(|_| Unresolved("bad Fn::Select index".into()))?;
                let items = self.list(&s[1])?;
                items
                    .get(i)
                    .map(|v| Json::String(v.clone()))
                    .ok_or_else(|| Unresolved("Fn::Select index out of range".into()))
            }
            "Split" => {
                let s = seq(2)?;
                let sep = self.string(&s[0])?;
                let text = self.string(&s[1])?;
                Ok(Json::Array(
                    text.split(sep.as_str())
                        .map(|p| Json::String(p.to_owned()))
                        .collect(),
                ))
            }
            "If" => {
                let s = seq(3)?;
                let cond = self.condition(s[0].as_str().unwrap_or_default())?;
                self.resolve(if cond { &s[1] } else { &s[2] })
            }
            "Equals" => {
                let s = seq(2)?;
                Ok(Json::Bool(self.resolve(&s[0])? == self.resolve(&s[1])?))
            }
            "Not" => {
                let s = seq(1)?;
                Ok(Json::Bool(!truthy(&self.resolve(&s[0])?)?))
            }
            "And" | "Or" => {
                let s = seq(1)?;
                let vals = s
                    .iter()
                    .map(|c| self.resolve(c).and_then(|v| truthy(&v)))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Json::Bool(if name == "And" {
                    vals.iter().all(|b| *b)
                } else {
                    vals.iter().any(|b| *b)
                }))
            }
            "Condition" => Ok(Json::Bool(
                self.condition(arg.as_str().unwrap_or_default())?,
            )),
            other => Err(Unresolved(format!("Fn::{other} has no local value"))),
        }
    }

    fn sub(&self, text: &str, vars: Option<&Mapping>) -> Result<String, Unresolved> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| Unresolved(format!("unclosed ${{ in !Sub {text}")))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.and_then(|m| m.get(name)) {
                out.push_str(&self.string(v)?);
            } else if let Some((id, attr)) = name.split_once('.')
                && !name.starts_with("AWS::")
            {
                out.push_str(&json_scalar(&self.get_att(id, attr)?));
            } else {
                let v = self.ref_value(name)?;
                out.push_str(&match v {
                    Json::Array(items) => {
                        items.iter().map(json_scalar).collect::<Vec<_>>().join(",")
                    }
                    other => json_scalar(&other),
                });
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

pub(super) fn truthy(v: &Json) -> Result<bool, Unresolved> {
    match v {
        Json::Bool(b) => Ok(*b),
        Json::String(s) if s == "true" => Ok(true),
        Json::String(s) if s == "false" => Ok(false),
        other => Err(Unresolved(format!("{other} is not a condition"))),
    }
}
