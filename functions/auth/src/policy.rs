//! The sign-up policy: which email domains may sign up, and whether a sign-up is
//! confirmed and its email verified on the spot. Read from the environment by
//! `SignUpPolicy::from_env` (in [`crate::settings`]).

use encache_shared::users::Email;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignUpPolicy {
    pub allowed_domains: Vec<String>,
    pub blocked_domains: Vec<String>,
    pub auto_confirm_users: bool,
    pub auto_verify_email: bool,
}

impl SignUpPolicy {
    /// `Ok` when the address may sign up, otherwise the reason to show the person.
    pub fn check(&self, email: &Email) -> Result<(), String> {
        let domain = email.domain();
        if self.blocked_domains.iter().any(|d| covers(d, domain)) {
            return Err(format!(
                "email addresses at {domain} cannot be used to sign up"
            ));
        }
        if !self.allowed_domains.is_empty()
            && !self.allowed_domains.iter().any(|d| covers(d, domain))
        {
            return Err(format!(
                "sign-up is limited to approved email domains and {domain} is not one of them"
            ));
        }
        Ok(())
    }
}

/// `example.com` covers `example.com` and `mail.example.com`, not `badexample.com`.
fn covers(listed: &str, domain: &str) -> bool {
    domain == listed
        || domain
            .strip_suffix(listed)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use encache_shared::config::{ConfigError, Env};

    fn policy(pairs: &[(&'static str, &'static str)]) -> Result<SignUpPolicy, ConfigError> {
        let pairs = pairs.to_vec();
        let src = move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        SignUpPolicy::from_env(&Env::new(&src))
    }

    fn email(raw: &str) -> Email {
        Email::parse(raw).unwrap()
    }

    #[test]
    fn domains_are_read_lower_cased_without_a_leading_at() {
        let p = policy(&[("ALLOWED_EMAIL_DOMAINS", " @Example.com, corp.test ")]).unwrap();
        assert_eq!(p.allowed_domains, vec!["example.com", "corp.test"]);
    }

    #[test]
    fn a_domain_on_both_lists_is_a_configuration_error() {
        let err = policy(&[
            ("ALLOWED_EMAIL_DOMAINS", "example.com"),
            ("BLOCKED_EMAIL_DOMAINS", "EXAMPLE.com"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("example.com"), "{err}");
    }

    #[test]
    fn a_listed_domain_covers_its_subdomains_but_not_lookalikes() {
        let p = policy(&[("BLOCKED_EMAIL_DOMAINS", "spam.test")]).unwrap();
        assert!(p.check(&email("a@mx.spam.test")).is_err());
        assert!(p.check(&email("a@notspam.test")).is_ok());
    }

    #[test]
    fn without_lists_everyone_may_sign_up_and_nothing_is_auto_confirmed() {
        let p = policy(&[]).unwrap();
        assert!(p.check(&email("a@anywhere.test")).is_ok());
        assert!(!p.auto_confirm_users && !p.auto_verify_email);
    }

    #[test]
    fn a_malformed_flag_names_the_variable() {
        let err = policy(&[("AUTO_CONFIRM_USERS", "sure")]).unwrap_err();
        assert!(err.to_string().contains("AUTO_CONFIRM_USERS"), "{err}");
    }
}
