//! Email addresses as encache stores and compares them: trimmed, domain lower-cased.
//! The local part keeps its case (RFC 5321 lets a mail server treat it as significant).
//! The pre-sign-up policy reads the domain; every `users` row stores [`Email::as_str`].

use std::fmt;

/// Why an address was refused. The `Display` text is safe to show the person signing up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("an email address is required")]
    Missing,
    #[error("the email address is not valid")]
    Invalid,
}

/// A normalised address: `local@domain` with the domain in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    address: String,
    at: usize,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Missing);
        }
        let (local, domain) = trimmed.split_once('@').ok_or(EmailError::Invalid)?;
        let domain = domain.to_ascii_lowercase();
        let well_formed = !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && domain.split('.').all(|label| !label.is_empty())
            && !trimmed.chars().any(|c| c.is_whitespace() || c.is_control());
        // The users table holds 3..=320 characters.
        let len = local.len() + 1 + domain.len();
        if !well_formed || !(3..=320).contains(&len) {
            return Err(EmailError::Invalid);
        }
        Ok(Self {
            address: format!("{local}@{domain}"),
            at: local.len(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The lower-cased domain, e.g. `example.com`.
    pub fn domain(&self) -> &str {
        &self.address[self.at + 1..]
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_their_domain_lower_cased() {
        let e = Email::parse("  Ada.Lovelace@Example.COM \n").unwrap();
        assert_eq!(e.as_str(), "Ada.Lovelace@example.com");
        assert_eq!(e.domain(), "example.com");
    }

    #[test]
    fn a_blank_address_is_missing() {
        assert_eq!(Email::parse("   "), Err(EmailError::Missing));
    }

    #[test]
    fn malformed_addresses_are_invalid() {
        for raw in [
            "ada",
            "@example.com",
            "ada@",
            "ada@@example.com",
            "ada@example..com",
            "a da@example.com",
            "ada@.com",
        ] {
            assert_eq!(Email::parse(raw), Err(EmailError::Invalid), "{raw}");
        }
    }
}
