//! Tokens at rest: XChaCha20-Poly1305 under `TWITCH_TOKEN_KEY`, a random
//! 24-byte nonce per value (stored before the ciphertext) and the column's
//! name as associated data, so an access token cannot pass for a refresh token.

use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

const NONCE_LEN: usize = 24;

#[derive(Clone)]
pub struct TokenCipher(XChaCha20Poly1305);

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCipher(..)")
    }
}

impl TokenCipher {
    /// `raw`: 32 bytes, base64 (`openssl rand -base64 32`).
    pub fn from_base64(raw: &str) -> Result<Self, String> {
        let key = base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .map_err(|_| "must be base64 (make one with `openssl rand -base64 32`)".to_owned())?;
        let cipher = XChaCha20Poly1305::new_from_slice(&key).map_err(|_| {
            format!(
                "must be 32 bytes of base64, not {} (make one with `openssl rand -base64 32`)",
                key.len()
            )
        })?;
        Ok(Self(cipher))
    }

    pub fn seal(&self, label: &str, plaintext: &str) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: label.as_bytes(),
        };
        // Encrypting a short in-memory value cannot fail (only inputs
        // beyond the cipher's 256 GiB limit would).
        let sealed = self.0.encrypt(&nonce, payload).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    pub fn open(&self, label: &str, sealed: &[u8]) -> Result<String, String> {
        if sealed.len() < NONCE_LEN {
            return Err(format!("the stored {label} is too short to be encrypted"));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad: label.as_bytes(),
        };
        let plain = self
            .0
            .decrypt(XNonce::from_slice(nonce), payload)
            .map_err(|_| {
                format!(
                    "the stored Twitch {label} does not decrypt with TWITCH_TOKEN_KEY (was the key changed?): sign in again with `dynamoctl twitch login`"
                )
            })?;
        String::from_utf8(plain).map_err(|_| format!("the stored {label} is not text"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[test]
    fn sealed_tokens_open_only_with_their_key_and_label() {
        let cipher = TokenCipher::from_base64(KEY).unwrap();
        let sealed = cipher.seal("access_token", "secret");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(cipher.open("access_token", &sealed).unwrap(), "secret");
        assert!(cipher.open("refresh_token", &sealed).is_err());
        let other =
            TokenCipher::from_base64("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=").unwrap();
        assert!(other.open("access_token", &sealed).is_err());
        assert_ne!(
            sealed,
            cipher.seal("access_token", "secret"),
            "nonces are fresh"
        );
    }

    #[test]
    fn a_short_or_malformed_key_is_refused() {
        assert!(
            TokenCipher::from_base64("c2hvcnQ=")
                .unwrap_err()
                .contains("32 bytes")
        );
        assert!(TokenCipher::from_base64("not base64!").is_err());
    }
}
