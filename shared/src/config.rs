//! Typed settings, parsed once at cold start.
//!
//! Every reader takes a lookup function instead of reading the process environment
//! directly, so tests can hand in a map and never mutate global state.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A missing or malformed setting. The message names the variable, so a function that
/// fails its cold start says exactly what to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("missing required environment variable {0}")]
    Missing(String),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: String, reason: String },
}

/// A value that must never reach a log line: `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The one way to read the value; grep for it to audit where secrets flow.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where settings come from: the process environment in a Lambda, a map in tests.
pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> Source for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Reads typed values from a [`Source`], treating empty strings as unset.
pub struct Env<'a> {
    source: &'a dyn Source,
}

impl<'a> Env<'a> {
    pub fn new(source: &'a dyn Source) -> Self {
        Self { source }
    }

    pub fn optional(&self, name: &str) -> Option<String> {
        self.source
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.optional(name)
            .ok_or_else(|| ConfigError::Missing(name.to_owned()))
    }

    pub fn secret(&self, name: &str) -> Result<Secret<String>, ConfigError> {
        self.required(name).map(Secret::new)
    }

    pub fn parsed<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError::Invalid {
                name: name.to_owned(),
                reason: format!("{raw:?}: {e}"),
            }),
        }
    }

    /// A duration in milliseconds, e.g. `DB_ACQUIRE_TIMEOUT_MS=2000`.
    pub fn millis(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        let ms: u64 = self.parsed(name, default.as_millis() as u64)?;
        if ms == 0 {
            return Err(ConfigError::Invalid {
                name: name.to_owned(),
                reason: "must be greater than zero".into(),
            });
        }
        Ok(Duration::from_millis(ms))
    }

    /// A comma-separated list; blanks are dropped.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.optional(name)
            .map(|raw| {
                raw.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.optional(name).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "true" | "1" | "yes") => Ok(true),
            Some(v) if matches!(v.as_str(), "false" | "0" | "no") => Ok(false),
            Some(v) => Err(ConfigError::Invalid {
                name: name.to_owned(),
                reason: format!("{v:?} is not a boolean (true/false)"),
            }),
        }
    }
}

/// A [`Source`] holding exactly `pairs`: what settings tests hand to [`Env::new`].
pub fn pairs(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(p: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        pairs(p)
    }

    #[test]
    fn a_missing_variable_is_named_in_the_error() {
        let src = source(&[]);
        let err = Env::new(&src).required("DATABASE_URL").unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing required environment variable DATABASE_URL"
        );
    }

    #[test]
    fn a_blank_variable_counts_as_missing() {
        let src = source(&[("X", "  ")]);
        assert_eq!(
            Env::new(&src).required("X"),
            Err(ConfigError::Missing("X".into()))
        );
    }

    #[test]
    fn a_malformed_number_names_the_variable_and_the_value() {
        let src = source(&[("DB_MAX_CONNECTIONS", "many")]);
        let err = Env::new(&src)
            .parsed::<u32>("DB_MAX_CONNECTIONS", 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("DB_MAX_CONNECTIONS"), "{err}");
        assert!(err.contains("\"many\""), "{err}");
    }

    #[test]
    fn a_zero_timeout_is_rejected() {
        let src = source(&[("T", "0")]);
        assert!(Env::new(&src).millis("T", Duration::from_secs(1)).is_err());
    }

    #[test]
    fn lists_drop_blanks_and_trim() {
        let src = source(&[("L", " a, ,b ,")]);
        assert_eq!(Env::new(&src).list("L"), vec!["a", "b"]);
    }

    #[test]
    fn secrets_never_print_their_value() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s}"), "[redacted]");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }
}
