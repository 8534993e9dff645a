//! The receiving side of Standard Webhooks 1.0 signatures, written from
//! the specification as a SOAR's stock library would be: HMAC-SHA256 over
//! `{id}.{timestamp}.{body}` with a `whsec_<base64>` key, any one of the
//! space-separated `v1,<base64>` entries in `webhook-signature` matching.
//!
//! It is not the connectors' signer run backwards, for two reasons: this
//! crate must not depend on the connectors (their tests use it), and a
//! receiver that shares the sender's code could not catch a fault in it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The Standard Webhooks headers.
pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// Why a `whsec_` secret given to the receiver is unusable.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a Standard Webhooks secret starts with `whsec_`")]
    Prefix,
    #[error("not base64 after `whsec_`")]
    Base64(#[source] base64::DecodeError),
    #[error("the key is empty")]
    Empty,
}

/// One decoded verification key.
#[derive(Clone)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key([redacted])")
    }
}

impl Key {
    /// Decodes `whsec_<base64>`.
    pub fn parse(secret: &str) -> Result<Key, KeyError> {
        let b64 = secret
            .trim()
            .strip_prefix("whsec_")
            .ok_or(KeyError::Prefix)?;
        let key = STANDARD.decode(b64).map_err(KeyError::Base64)?;
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Key(key))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Option<[u8; 32]> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).ok()?;
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        Some(mac.finalize().into_bytes().into())
    }
}

/// Why a received webhook was not accepted; [`Rejected::as_str`] is what
/// the receiver answers in its 401 body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    MissingHeader,
    BadTimestamp,
    /// Outside the tolerance window.
    Stale,
    NoMatch,
}

impl Rejected {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejected::MissingHeader => "missing_header",
            Rejected::BadTimestamp => "bad_timestamp",
            Rejected::Stale => "stale",
            Rejected::NoMatch => "bad_signature",
        }
    }
}

/// The headers of one request that carry its signature.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Checks a received webhook: the timestamp within `tolerance_secs` of
/// `now`, and at least one `v1,` entry matching one of `keys` (compared in
/// constant time).
pub fn verify(
    keys: &[Key],
    signed: Signed<'_>,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), Rejected> {
    let (Some(id), Some(ts), Some(sig)) = (signed.id, signed.timestamp, signed.signature) else {
        return Err(Rejected::MissingHeader);
    };
    let ts: i64 = ts.trim().parse().map_err(|_| Rejected::BadTimestamp)?;
    if (now - ts).abs() > tolerance_secs {
        return Err(Rejected::Stale);
    }
    let entries: Vec<Vec<u8>> = sig
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .collect();
    let matches = keys
        .iter()
        .filter_map(|key| key.mac(id, ts, body))
        .any(|expected| {
            entries
                .iter()
                .any(|got| got.len() == expected.len() && bool::from(got.ct_eq(&expected)))
        });
    if matches {
        Ok(())
    } else {
        Err(Rejected::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example published with the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn signed<'a>(ts: &'a str, signature: &'a str) -> Signed<'a> {
        Signed {
            id: Some(ID),
            timestamp: Some(ts),
            signature: Some(signature),
        }
    }

    fn keys(secrets: &[&str]) -> Vec<Key> {
        secrets
            .iter()
            .map(|s| Key::parse(s).expect("valid key"))
            .collect()
    }

    #[test]
    fn accepts_the_specification_example_with_any_of_several_keys() {
        let ts = TS.to_string();
        let other = "whsec_dGhpcyBpcyBhbm90aGVyIGtleSBvZiAzMiBieXRlcyE=";
        let sig = format!("v1,bm90IHRoaXMgb25l {SIGNATURE}");
        for ks in [keys(&[SECRET]), keys(&[other, SECRET])] {
            assert_eq!(verify(&ks, signed(&ts, &sig), BODY, TS + 10, 300), Ok(()));
        }
        assert_eq!(
            verify(&keys(&[other]), signed(&ts, SIGNATURE), BODY, TS, 300),
            Err(Rejected::NoMatch)
        );
    }

    #[test]
    fn rejects_tampering_staleness_and_missing_headers() {
        let ks = keys(&[SECRET]);
        let ts = TS.to_string();
        assert_eq!(
            verify(&ks, signed(&ts, SIGNATURE), b"{}", TS, 300),
            Err(Rejected::NoMatch)
        );
        assert_eq!(
            verify(&ks, signed(&ts, SIGNATURE), BODY, TS + 301, 300),
            Err(Rejected::Stale)
        );
        assert_eq!(
            verify(&ks, signed("soon", SIGNATURE), BODY, TS, 300),
            Err(Rejected::BadTimestamp)
        );
        let unsigned = Signed {
            signature: None,
            ..signed(&ts, SIGNATURE)
        };
        assert_eq!(
            verify(&ks, unsigned, BODY, TS, 300),
            Err(Rejected::MissingHeader)
        );
    }

    #[test]
    fn secrets_must_be_whsec_base64() {
        assert!(matches!(Key::parse("MfKQ9r8G"), Err(KeyError::Prefix)));
        assert!(matches!(Key::parse("whsec_!!"), Err(KeyError::Base64(_))));
        assert!(matches!(Key::parse("whsec_"), Err(KeyError::Empty)));
    }
}
