//! New passwords: 64 characters of `[A-Za-z0-9]` from the OS's generator (about 381 bits),
//! as Terraform's generated secrets; no character that needs quoting anywhere.

use encache_shared::config::Secret;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub const LENGTH: usize = 64;

/// A fresh password; fails only if the OS's generator does.
pub fn generate() -> Result<Secret<String>, getrandom::Error> {
    // Rejection sampling: bytes of 248 and over would favour the first 8 characters.
    let limit = 256 - 256 % ALPHABET.len();
    let mut out = String::with_capacity(LENGTH);
    let mut buf = [0u8; 96];
    while out.len() < LENGTH {
        getrandom::fill(&mut buf)?;
        for b in buf.iter().map(|b| usize::from(*b)).filter(|b| *b < limit) {
            if out.len() == LENGTH {
                break;
            }
            out.push(char::from(ALPHABET[b % ALPHABET.len()]));
        }
    }
    Ok(Secret::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_alphanumeric_and_never_repeat() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_eq!(a.expose().len(), LENGTH);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
