//! Random secrets (tokens, sessions, setup codes), how they are kept
//! (SHA-256), and how they are compared (in constant time).

use sha2::{Digest, Sha256};

/// A new random secret: 32 bytes, hex.
pub fn new_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(hex::encode(bytes))
}

/// How secrets are kept: SHA-256, hex. They are random and long, so a
/// fast hash is enough; passwords get Argon2id.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Equality of two secrets in time that does not depend on where they
/// differ.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    // Hashing first makes both sides one length: the comparison says
    // nothing about the secret's length either.
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.ct_eq(&b).into()
}
