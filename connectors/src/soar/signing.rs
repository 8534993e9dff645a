//! Standard Webhooks 1.0 signatures: HMAC-SHA256 over `{id}.{timestamp}.{body}`
//! with a `whsec_<base64>` key, sent as space-separated `v1,<base64>` entries
//! in `webhook-signature` (one per secret while a secret is being rotated).
//!
//! The verifier lives here too: the SOAR receiver stand-in in the tests
//! uses it, and so can inbound webhooks.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Secret, SoarError};

type HmacSha256 = Hmac<Sha256>;

/// The Standard Webhooks headers.
pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// One decoded signing key.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

impl SigningKey {
    /// Decodes `whsec_<base64>`. The spec asks for 24 to 64 random bytes; we
    /// refuse fewer than 16, which no generator produces on purpose.
    pub fn parse(secret: &Secret) -> Result<SigningKey, SoarError> {
        let text = secret.expose().trim();
        let b64 = text.strip_prefix("whsec_").ok_or_else(|| {
            SoarError::SigningSecret("a Standard Webhooks secret starts with `whsec_`".into())
        })?;
        let key = STANDARD
            .decode(b64)
            .map_err(|_| SoarError::SigningSecret("not base64 after `whsec_`".into()))?;
        if key.len() < 16 || key.len() > 128 {
            return Err(SoarError::SigningSecret(format!(
                "the key is {} bytes; expected 24 to 64",
                key.len()
            )));
        }
        Ok(SigningKey(key))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        // A key of any length is valid for HMAC: new_from_slice cannot fail.
        let mut mac = match HmacSha256::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => return [0; 32],
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// `v1,<base64>` for one key.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp, body)))
    }
}

/// Signs with every configured key: receivers accept any one of them, which
/// is how a secret is rotated without a window of failed deliveries.
pub fn signature_header(keys: &[SigningKey], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|k| k.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use riposte_standins::soar_receiver::signature::{
        verify as receiver_verify, Key, Rejected, Signed,
    };

    fn key(s: &str) -> SigningKey {
        SigningKey::parse(&Secret::new(s)).expect("valid key")
    }

    #[test]
    fn matches_the_standard_webhooks_test_vector() {
        // Published with the Standard Webhooks reference libraries: a
        // receiver's stock library must accept what we send.
        let k = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(
            k.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    // Riposte only signs; the receiver stand-in's verifier, written apart
    // from the spec, checks what it signs.
    fn verify(
        keys: &[&str],
        id: Option<&str>,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), Rejected> {
        let keys: Vec<Key> = keys
            .iter()
            .map(|k| Key::parse(k).expect("valid key"))
            .collect();
        let signed = Signed {
            id,
            timestamp,
            signature,
        };
        receiver_verify(&keys, signed, body, now, 300)
    }

    const OLD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const NEW: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";

    #[test]
    fn rotation_signs_with_every_key_and_verifies_with_any() {
        let header = signature_header(&[key(OLD), key(NEW)], "id1", 100, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        for k in [OLD, NEW] {
            verify(&[k], Some("id1"), Some("100"), Some(&header), b"{}", 100)
                .expect("one key is enough");
        }
    }

    #[test]
    fn rejects_tampering_staleness_and_missing_headers() {
        let sig = signature_header(&[key(OLD)], "id1", 1000, b"{\"a\":1}");
        let check =
            |id, ts, body: &[u8], now| verify(&[OLD], Some(id), Some(ts), Some(&sig), body, now);
        assert_eq!(check("id1", "1000", b"{\"a\":1}", 1000), Ok(()));
        assert_eq!(
            check("id1", "1000", b"{\"a\":2}", 1000),
            Err(Rejected::NoMatch)
        );
        assert_eq!(
            check("id2", "1000", b"{\"a\":1}", 1000),
            Err(Rejected::NoMatch)
        );
        assert_eq!(
            check("id1", "1000", b"{\"a\":1}", 1301),
            Err(Rejected::Stale)
        );
        assert_eq!(
            check("id1", "1000", b"{\"a\":1}", 699),
            Err(Rejected::Stale)
        );
        assert_eq!(
            check("id1", "x", b"{\"a\":1}", 1000),
            Err(Rejected::BadTimestamp)
        );
        assert_eq!(
            verify(&[OLD], None, Some("1000"), Some(&sig), b"", 1000),
            Err(Rejected::MissingHeader)
        );
        assert_eq!(
            verify(
                &[OLD],
                Some("id1"),
                Some("1000"),
                Some("v1,!!! v2,abc"),
                b"",
                1000
            ),
            Err(Rejected::NoMatch)
        );
    }

    #[test]
    fn secrets_must_be_whsec_base64() {
        assert!(SigningKey::parse(&Secret::new("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).is_err());
        assert!(SigningKey::parse(&Secret::new("whsec_not base64!")).is_err());
        assert!(SigningKey::parse(&Secret::new("whsec_AAAA")).is_err());
        assert!(!format!("{:?}", key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).contains("Mf"));
    }
}
