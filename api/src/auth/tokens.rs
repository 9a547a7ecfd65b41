//! Access tokens: HS256 JWTs with issuer, audience, expiry and a token id (for logout).

use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use domain::auth::UserType;

/// The `iss` and `aud` of every ccare token.
pub const ISSUER: &str = "ccare";
pub const AUDIENCE: &str = "ccare-api";

/// The shortest signing secret accepted (HS256 wants at least its output size).
pub const MIN_SECRET_BYTES: usize = 32;

/// The claims of a ccare token. `role` and `name` are what they were at login; every request
/// checks the account's current state instead of trusting them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Employee id or account number.
    pub sub: String,
    pub user_type: UserType,
    /// The role at login (`customer` for customers).
    pub role: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    /// The token's id: what logout revokes.
    pub jti: String,
}

impl Claims {
    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    pub fn issued_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.iat, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CCARE_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes (it has {0})")]
pub struct SecretTooShort(pub usize);

/// Signs and checks tokens with one secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    lifetime: Duration,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// A newly issued token.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub claims: Claims,
    pub lifetime: Duration,
}

impl TokenKeys {
    pub fn new(secret: &[u8], lifetime: Duration) -> Result<Self, SecretTooShort> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SecretTooShort(secret.len()));
        }
        Ok(TokenKeys {
            // Refused only when empty, which the length check above rules out.
            encoding: EncodingKey::from_secret(secret).map_err(|_| SecretTooShort(0))?,
            decoding: DecodingKey::from_secret(secret).map_err(|_| SecretTooShort(0))?,
            lifetime,
        })
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    pub fn issue(
        &self,
        user_type: UserType,
        subject: &str,
        role: &str,
        name: &str,
        email: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Issued, jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: subject.to_string(),
            user_type,
            role: role.to_string(),
            name: name.to_string(),
            email: email.map(str::to_string),
            iat: now.timestamp(),
            exp: now.timestamp() + self.lifetime.as_secs() as i64,
            iss: ISSUER.to_string(),
            aud: AUDIENCE.to_string(),
            jti: Uuid::new_v4().to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(Issued {
            token,
            claims,
            lifetime: self.lifetime,
        })
    }

    /// The claims of `token` if its signature, algorithm, issuer, audience and expiry check out.
    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 30;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map(|data| data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&[7u8; 32], Duration::from_secs(3600)).unwrap()
    }

    #[test]
    fn a_secret_shorter_than_32_bytes_is_refused() {
        assert_eq!(
            TokenKeys::new(b"too short", Duration::from_secs(60)).unwrap_err(),
            SecretTooShort(9)
        );
    }

    #[test]
    fn an_issued_token_verifies_and_carries_its_claims() {
        let issued = keys()
            .issue(
                UserType::Employee,
                "00123",
                "generic",
                "Thabo",
                None,
                Utc::now(),
            )
            .unwrap();
        let claims = keys().verify(&issued.token).unwrap();
        assert_eq!(claims, issued.claims);
    }

    #[test]
    fn an_expired_token_is_refused() {
        let long_ago = Utc::now() - chrono::TimeDelta::hours(2);
        let issued = keys()
            .issue(
                UserType::Employee,
                "00123",
                "generic",
                "Thabo",
                None,
                long_ago,
            )
            .unwrap();
        assert!(keys().verify(&issued.token).is_err());
    }

    #[test]
    fn a_token_signed_with_another_secret_or_tampered_is_refused() {
        let other = TokenKeys::new(&[8u8; 32], Duration::from_secs(3600)).unwrap();
        let issued = other
            .issue(
                UserType::Employee,
                "00",
                "superadmin",
                "Eve",
                None,
                Utc::now(),
            )
            .unwrap();
        assert!(keys().verify(&issued.token).is_err());

        let genuine = keys()
            .issue(
                UserType::Employee,
                "00123",
                "generic",
                "Thabo",
                None,
                Utc::now(),
            )
            .unwrap();
        let mut parts: Vec<String> = genuine.token.split('.').map(str::to_string).collect();
        let forged = genuine.claims.clone();
        let forged = Claims {
            role: "superadmin".into(),
            ..forged
        };
        parts[1] = base64_url(&serde_json::to_vec(&forged).unwrap());
        assert!(keys().verify(&parts.join(".")).is_err());
    }

    /// Unpadded base64url, enough to forge a payload in a test.
    fn base64_url(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n =
                chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}
