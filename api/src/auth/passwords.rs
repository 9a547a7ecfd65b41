//! Password and registration-code hashing with argon2id (PHC strings).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::Rng;

use domain::auth::Credentials;

/// The argon2 PHC string of `secret`, with a fresh random salt.
pub fn hash(secret: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        // Only a salt or output length outside argon2's bounds fails, and the defaults are in them.
        .expect("argon2 with default parameters hashes any input")
        .to_string()
}

/// Whether `secret` matches the PHC string `phc`. A malformed stored hash matches nothing.
pub fn verify(secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash to verify against when the user does not exist, so that a login for an unknown user
/// takes as long as one with a wrong password (no user enumeration by timing).
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("decoy password nobody has"))
}

/// argon2 behind the domain's [`Credentials`] port.
#[derive(Debug, Clone, Copy, Default)]
pub struct Argon2Credentials;

impl Credentials for Argon2Credentials {
    fn verify(&self, secret: &str, phc_hash: &str) -> bool {
        verify(secret, phc_hash)
    }
}

/// The characters of registration codes: no 0/O, 1/I/L, which are misread on the phone.
const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// A new one-time registration code: 10 characters of [`CODE_ALPHABET`] (about 50 bits).
pub fn new_registration_code() -> String {
    let mut rng = rand::rng();
    (0..10)
        .map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char)
        .collect()
}

/// A random secret of 64 hex digits (256 bits), for generated settings such as the demo's
/// token secret.
pub fn random_secret() -> String {
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_secret_only() {
        let phc = hash("correct horse");
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("correct horse", &phc));
        assert!(!verify("correct horse!", &phc));
        assert!(!verify("correct horse", "not a hash"));
    }

    #[test]
    fn two_hashes_of_one_secret_differ_by_their_salt() {
        assert_ne!(hash("same"), hash("same"));
    }

    #[test]
    fn registration_codes_use_the_unambiguous_alphabet() {
        let code = new_registration_code();
        assert_eq!(code.len(), 10);
        assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{code}");
        assert_ne!(code, new_registration_code());
    }
}
