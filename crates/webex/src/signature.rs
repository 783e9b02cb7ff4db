//! Webhook signatures: Webex signs each webhook body with HMAC-SHA1 keyed by the webhook's secret and
//! sends the lowercase hex digest in [`SIGNATURE_HEADER`].

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// The header that carries a webhook body's signature.
pub const SIGNATURE_HEADER: &str = "X-Spark-Signature";

/// Length of a SHA-1 digest in bytes.
const DIGEST_LEN: usize = 20;

/// The signature Webex would send for `body` under `secret`: lowercase hex HMAC-SHA1.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    hex::encode(digest(secret, body))
}

/// Whether `header` (the [`SIGNATURE_HEADER`] value) is the signature of `body` under `secret`.
///
/// Surrounding whitespace and upper-case hex are accepted; anything malformed (empty, not hex, not
/// 40 digits) is `false`. The digests are compared in constant time.
///
/// ```
/// use whereis_webex::{sign, verify_signature};
///
/// let body = br#"{"resource":"messages","event":"created","data":{"id":"M1"}}"#;
/// let header = sign(b"webhook secret", body); // what Webex puts in X-Spark-Signature
/// assert!(verify_signature(b"webhook secret", body, &header));
/// assert!(!verify_signature(b"another secret", body, &header));
/// ```
pub fn verify_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    let header = header.trim();
    if header.len() != DIGEST_LEN * 2 {
        return false;
    }
    let Ok(given) = hex::decode(header) else {
        return false;
    };
    let expected = digest(secret, body);
    given.ct_eq(&expected).into()
}

fn digest(secret: &[u8], body: &[u8]) -> [u8; DIGEST_LEN] {
    // HMAC accepts keys of any length (long keys are hashed first), so this cannot fail; the fallback
    // keeps the function total without an unwrap.
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return [0; DIGEST_LEN],
    };
    mac.update(body);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 2202 test case 2 for HMAC-SHA1.
    #[test]
    fn rfc2202_vector() {
        let sig = sign(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(sig, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        assert!(verify_signature(
            b"Jefe",
            b"what do ya want for nothing?",
            &sig
        ));
    }

    #[test]
    fn empty_secret_and_body_sign() {
        // python3 -c "import hmac,hashlib;print(hmac.new(b'',b'',hashlib.sha1).hexdigest())"
        assert_eq!(sign(b"", b""), "fbdb1d1b18aa6c08324b7d64b71fb76370690e1d");
    }

    #[test]
    fn upper_case_and_whitespace_accepted() {
        let sig = sign(b"k", b"body");
        assert!(verify_signature(
            b"k",
            b"body",
            &format!("  {}\t\n", sig.to_uppercase())
        ));
    }

    #[test]
    fn malformed_headers_rejected() {
        let sig = sign(b"k", b"body");
        for bad in [
            "",
            " ",
            &sig[..39],
            &sig[..38],
            &format!("{sig}00"),
            &format!("sha1={sig}"),
            &sig.replace(|c: char| c.is_ascii_digit(), "g"),
            "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
            "éééééééééééééééééééé",
        ] {
            assert!(!verify_signature(b"k", b"body", bad), "{bad:?}");
        }
    }
}
