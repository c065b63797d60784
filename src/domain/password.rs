//! Password hashing with Argon2id at OWASP's parameters (m = 19 MiB, t = 2, p = 1).
//!
//! Each hash costs ~20 ms of a core and 19 MiB of memory, so hashing runs on tokio's blocking
//! pool (never on the async workers) behind a semaphore: a flood of sign-in attempts queues
//! for a permit instead of allocating 19 MiB per request.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use super::secret::SecretString;

/// Shortest and longest accepted passwords. The upper bound keeps a single hash cheap.
pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 128;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("is too short (minimum is {MIN_PASSWORD_LEN} characters)")]
    TooShort,
    #[error("is too long (maximum is {MAX_PASSWORD_LEN} characters)")]
    TooLong,
    #[error("password hashing failed")]
    Hashing,
}

/// Checks a new password against the length rules.
pub fn validate_new_password(password: &str) -> Result<(), PasswordError> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        Err(PasswordError::TooShort)
    } else if len > MAX_PASSWORD_LEN {
        Err(PasswordError::TooLong)
    } else {
        Ok(())
    }
}

fn argon2() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet: Argon2id, 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`). Blocking.
pub fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    argon2()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hashing)
}

/// Checks `password` against a PHC string. Blocking; constant-time in the digest compare.
pub fn verify_blocking(password: &str, phc: &str) -> bool {
    argon2().verify_password(password.as_bytes(), phc).is_ok()
}

/// Runs password hashes on the blocking pool, at most `limit` at a time.
#[derive(Clone, Debug)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Verified against when the account does not exist, so that an unknown username costs
    /// the same time as a wrong password and timing cannot tell them apart.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub fn new(limit: usize) -> PasswordHasher {
        let dummy = hash_blocking(&super::secret::base64url(
            &super::secret::random_bytes::<16>(),
        ))
        .unwrap_or_default();
        PasswordHasher {
            permits: Arc::new(Semaphore::new(limit.max(1))),
            dummy_hash: dummy.into(),
        }
    }

    pub async fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        let password = password.clone();
        self.run(move || hash_blocking(password.expose())).await?
    }

    /// `true` when `password` matches `phc`. With no stored hash (unknown user) it still
    /// spends one verification and answers `false`.
    pub async fn verify(&self, password: &SecretString, phc: Option<&str>) -> bool {
        let (phc, real) = match phc {
            Some(p) => (Arc::<str>::from(p), true),
            None => (self.dummy_hash.clone(), false),
        };
        let password = password.clone();
        let ok = self
            .run(move || verify_blocking(password.expose(), &phc))
            .await;
        real && ok.unwrap_or(false)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Hashing)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| PasswordError::Hashing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let phc = hash_blocking("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_blocking("correct horse", &phc));
        assert!(!verify_blocking("correct horsf", &phc));
        assert!(!verify_blocking("correct horse", "not a phc string"));
    }

    #[test]
    fn password_length_rules() {
        assert_eq!(
            validate_new_password("1234567"),
            Err(PasswordError::TooShort)
        );
        assert_eq!(validate_new_password("12345678"), Ok(()));
        assert_eq!(
            validate_new_password(&"x".repeat(129)),
            Err(PasswordError::TooLong)
        );
    }

    #[tokio::test]
    async fn unknown_accounts_never_verify() {
        let hasher = PasswordHasher::new(2);
        let pw = SecretString::new("whatever-password");
        assert!(!hasher.verify(&pw, None).await);
        let phc = hasher.hash(&pw).await.unwrap();
        assert!(hasher.verify(&pw, Some(&phc)).await);
    }
}
