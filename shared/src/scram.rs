//! SCRAM-SHA-256 verifiers (RFC 5802 / 7677) in PostgreSQL's `rolpassword` format: how the
//! functions' login role gets its password (the migration function, `DB_APP_USER`; the
//! rotation function, `ALTER ROLE CURRENT_USER`). A statement carrying a verifier instead of
//! the password logs a salted hash (`log_statement = 'ddl'`), never the password.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// PostgreSQL's default `scram_iterations`.
const ITERATIONS: u32 = 4096;

/// The SCRAM-SHA-256 verifier PostgreSQL stores for `password` with `salt`:
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (RFC 5803's format).
/// The password is used as given (SASLprep leaves the generated ASCII ones unchanged).
pub fn verifier(password: &str, salt: &[u8]) -> String {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, ITERATIONS, &mut salted);
    let hmac = |msg: &[u8]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(&salted).expect("HMAC takes any key length");
        mac.update(msg);
        mac.finalize().into_bytes()
    };
    let stored_key = Sha256::digest(hmac(b"Client Key"));
    let server_key = hmac(b"Server Key");
    format!(
        "SCRAM-SHA-256${ITERATIONS}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key),
        STANDARD.encode(server_key)
    )
}

/// [`verifier`] with a fresh random salt (16 bytes from the OS's generator).
pub fn salted_verifier(password: &str) -> String {
    verifier(password, uuid::Uuid::new_v4().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verifier_has_postgresqls_shape_and_never_the_password() {
        let v = verifier("correct horse", b"0123456789abcdef");
        assert!(
            v.starts_with("SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$"),
            "{v}"
        );
        assert!(!v.contains("correct horse"));
        let (_, keys) = v.rsplit_once('$').unwrap();
        let (stored, server) = keys.split_once(':').unwrap();
        assert_eq!(STANDARD.decode(stored).unwrap().len(), 32);
        assert_eq!(STANDARD.decode(server).unwrap().len(), 32);
        // Salted: the same password gives another verifier with another salt.
        assert_ne!(v, verifier("correct horse", b"fedcba9876543210"));
        assert_ne!(salted_verifier("x"), salted_verifier("x"));
    }
}
