//! Discord webhook messages, always within Discord's documented limits.

use serde::Serialize;

pub const TITLE_MAX: usize = 256;
pub const DESCRIPTION_MAX: usize = 4096;
pub const FIELDS_MAX: usize = 25;
pub const FIELD_NAME_MAX: usize = 256;
pub const FIELD_VALUE_MAX: usize = 1024;
pub const FOOTER_MAX: usize = 2048;
pub const TOTAL_MAX: usize = 6000;

/// Severity decides the embed colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Ok,
    Warning,
    High,
    Critical,
}

impl Severity {
    pub fn colour(self) -> u32 {
        match self {
            Self::Info => 0x95A5A6,
            Self::Ok => 0x2ECC71,
            Self::Warning => 0xF1C40F,
            Self::High => 0xE67E22,
            Self::Critical => 0xE74C3C,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WebhookMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    pub embeds: Vec<Embed>,
    pub allowed_mentions: AllowedMentions,
}

/// `{"parse": []}` suppresses every ping; a configured role is the only exception.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AllowedMentions {
    pub parse: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

impl WebhookMessage {
    /// One embed, fitted to the limits; the role (if any) is the only mention allowed.
    pub fn single(mut embed: Embed, mention_role_id: Option<&str>) -> Self {
        embed.fit();
        match mention_role_id {
            Some(role) => Self {
                content: Some(format!("<@&{role}>")),
                embeds: vec![embed],
                allowed_mentions: AllowedMentions {
                    parse: vec![],
                    roles: vec![role.to_owned()],
                },
            },
            None => Self {
                content: None,
                embeds: vec![embed],
                allowed_mentions: AllowedMentions {
                    parse: vec![],
                    roles: vec![],
                },
            },
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Embed {
    pub title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub color: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub footer: Option<Footer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
    pub inline: bool,
}

impl Field {
    pub fn new(name: impl Into<String>, value: impl Into<String>, inline: bool) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            inline,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Footer {
    pub text: String,
}

/// Shortens `s` to at most `max` characters, at a character boundary, marking the cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

fn len(s: &str) -> usize {
    s.chars().count()
}

impl Embed {
    /// The characters Discord counts toward the 6,000 total.
    pub fn total_chars(&self) -> usize {
        len(&self.title)
            + len(&self.description)
            + self.footer.as_ref().map_or(0, |f| len(&f.text))
            + self
                .fields
                .iter()
                .map(|f| len(&f.name) + len(&f.value))
                .sum::<usize>()
    }

    /// Truncates every part to its limit, then the description, the last fields and the
    /// footer until the whole fits in 6,000 characters. Blank parts Discord rejects are
    /// filled in.
    pub fn fit(&mut self) {
        if self.title.trim().is_empty() {
            self.title = "Cost notification".into();
        }
        self.title = truncate(&self.title, TITLE_MAX);
        self.description = truncate(&self.description, DESCRIPTION_MAX);
        if self.fields.len() > FIELDS_MAX {
            let dropped = self.fields.len() - (FIELDS_MAX - 1);
            self.fields.truncate(FIELDS_MAX - 1);
            self.fields
                .push(Field::new("…", format!("{dropped} more not shown"), false));
        }
        for f in &mut self.fields {
            if f.name.trim().is_empty() {
                f.name = "—".into();
            }
            if f.value.trim().is_empty() {
                f.value = "—".into();
            }
            f.name = truncate(&f.name, FIELD_NAME_MAX);
            f.value = truncate(&f.value, FIELD_VALUE_MAX);
        }
        if let Some(footer) = &mut self.footer {
            footer.text = truncate(&footer.text, FOOTER_MAX);
        }
        let mut excess = self.total_chars().saturating_sub(TOTAL_MAX);
        if excess > 0 && !self.description.is_empty() {
            let keep = len(&self.description).saturating_sub(excess);
            self.description = truncate(&self.description, keep);
            excess = self.total_chars().saturating_sub(TOTAL_MAX);
        }
        while excess > 0 && !self.fields.is_empty() {
            self.fields.pop();
            excess = self.total_chars().saturating_sub(TOTAL_MAX);
        }
        if excess > 0
            && let Some(footer) = &mut self.footer
        {
            let keep = len(&footer.text).saturating_sub(excess);
            footer.text = truncate(&footer.text, keep);
            excess = self.total_chars().saturating_sub(TOTAL_MAX);
        }
        if excess > 0 {
            let keep = len(&self.title).saturating_sub(excess).max(1);
            self.title = truncate(&self.title, keep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_cuts_at_a_character_boundary_and_marks_the_cut() {
        let s = "é".repeat(300);
        let t = truncate(&s, 256);
        assert_eq!(t.chars().count(), 256);
        assert!(t.ends_with('…'));
        assert_eq!(truncate("short", 256), "short");
    }

    #[test]
    fn an_oversized_embed_is_fitted_within_every_limit() {
        let mut e = Embed {
            title: "t".repeat(1000),
            description: "d".repeat(5000),
            fields: (0..40)
                .map(|i| Field::new(format!("{i}").repeat(300), "v".repeat(2000), true))
                .collect(),
            footer: Some(Footer {
                text: "f".repeat(3000),
            }),
            ..Embed::default()
        };
        e.fit();
        assert!(e.title.chars().count() <= TITLE_MAX);
        assert!(e.description.chars().count() <= DESCRIPTION_MAX);
        assert!(e.fields.len() <= FIELDS_MAX);
        for f in &e.fields {
            assert!(f.name.chars().count() <= FIELD_NAME_MAX);
            assert!(f.value.chars().count() <= FIELD_VALUE_MAX);
        }
        assert!(e.footer.as_ref().unwrap().text.chars().count() <= FOOTER_MAX);
        assert!(e.total_chars() <= TOTAL_MAX, "{}", e.total_chars());
    }

    #[test]
    fn mentions_are_suppressed_unless_a_role_is_configured() {
        let m = WebhookMessage::single(Embed::default(), None);
        assert_eq!(
            serde_json::to_value(&m).unwrap()["allowed_mentions"],
            serde_json::json!({"parse": []})
        );
        let m = WebhookMessage::single(Embed::default(), Some("123"));
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(
            v["allowed_mentions"],
            serde_json::json!({"parse": [], "roles": ["123"]})
        );
        assert_eq!(v["content"], "<@&123>");
    }
}
