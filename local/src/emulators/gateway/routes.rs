//! The HTTP API's routes: `METHOD /path/{param}/{greedy+}` matched against a request's
//! path, the most specific route winning, as API Gateway picks one.

use std::collections::HashMap;
use std::sync::Arc;

use super::jwt::JwtAuthorizer;

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

pub struct Route {
    pub method: String,
    pub path: String,
    segments: Vec<Segment>,
    pub function: String,
    pub authorizer: Option<Arc<JwtAuthorizer>>,
}

impl Route {
    /// `method path` → `function`, behind `authorizer` when there is one.
    pub fn new(
        method: &str,
        path: &str,
        function: &str,
        authorizer: Option<Arc<JwtAuthorizer>>,
    ) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            segments: parse_path(path),
            function: function.to_owned(),
            authorizer,
        }
    }

    /// A route without an authorizer (benchmarks and tests build their own gateway).
    pub fn open(method: &str, path: &str, function: &str) -> Self {
        Self::new(method, path, function, None)
    }

    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Path parameters when `path` matches.
    pub(super) fn matches(&self, path: &str) -> Option<HashMap<String, String>> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut params = HashMap::new();
        for (i, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::Greedy(name) => {
                    let rest = parts.get(i..)?.join("/");
                    if rest.is_empty() {
                        return None;
                    }
                    params.insert(name.clone(), decode(&rest));
                    return Some(params);
                }
                Segment::Literal(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    let value = parts.get(i).filter(|v| !v.is_empty())?;
                    params.insert(name.clone(), decode(value));
                }
            }
        }
        (parts.len() == self.segments.len()).then_some(params)
    }

    /// More specific routes win: no greedy part, more literal segments, exact method.
    pub(super) fn rank(&self, method: &str) -> (bool, usize, bool) {
        let greedy = self
            .segments
            .iter()
            .any(|s| matches!(s, Segment::Greedy(_)));
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        (!greedy, literals, self.method == method)
    }
}

pub(super) fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn parse_path(path: &str) -> Vec<Segment> {
    path.trim_start_matches('/')
        .split('/')
        .map(|s| {
            if let Some(inner) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                match inner.strip_suffix('+') {
                    Some(name) => Segment::Greedy(name.to_owned()),
                    None => Segment::Param(inner.to_owned()),
                }
            } else {
                Segment::Literal(s.to_owned())
            }
        })
        .collect()
}
