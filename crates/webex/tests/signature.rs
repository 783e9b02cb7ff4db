//! Webhook signature checks against the recorded webhook body, as the webhook handler uses them.

use hmac::{Hmac, Mac};
use proptest::prelude::*;
use sha1::Sha1;
use whereis_webex::{sign, verify_signature, SIGNATURE_HEADER};

const BODY: &[u8] = include_bytes!("fixtures/webex-webhook-message-created.json");
const SECRET: &[u8] = b"whereis-webhook-secret";

/// The expected digest, computed independently of the crate with the `hmac` crate.
fn reference(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[test]
fn header_name() {
    assert_eq!(SIGNATURE_HEADER, "X-Spark-Signature");
}

#[test]
fn signs_the_fixture_like_webex() {
    let expected = reference(SECRET, BODY);
    assert_eq!(sign(SECRET, BODY), expected);
    assert_eq!(expected.len(), 40);
    assert!(expected
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert!(verify_signature(SECRET, BODY, &expected));
}

#[test]
fn known_vector_of_a_small_body() {
    // python3 -c "import hmac,hashlib;print(hmac.new(b'secret',b'{\"id\":\"x\"}',hashlib.sha1).hexdigest())"
    assert_eq!(
        sign(b"secret", br#"{"id":"x"}"#),
        "173f1c4f915a4b62aec3c4d5d3ce6d97e5757dc0"
    );
}

#[test]
fn wrong_secret_is_rejected() {
    let signature = sign(SECRET, BODY);
    assert!(!verify_signature(b"another-secret", BODY, &signature));
    assert!(!verify_signature(b"", BODY, &signature));
}

#[test]
fn tampered_body_is_rejected() {
    let signature = sign(SECRET, BODY);
    let mut tampered = BODY.to_vec();
    let at = tampered.iter().position(|&b| b == b'j').unwrap();
    tampered[at] = b'J';
    assert!(!verify_signature(SECRET, &tampered, &signature));
    assert!(!verify_signature(
        SECRET,
        &BODY[..BODY.len() - 1],
        &signature
    ));
    let mut longer = BODY.to_vec();
    longer.push(b'\n');
    assert!(!verify_signature(SECRET, &longer, &signature));
}

#[test]
fn header_formatting_tolerated() {
    let signature = sign(SECRET, BODY);
    assert!(verify_signature(SECRET, BODY, &signature.to_uppercase()));
    assert!(verify_signature(SECRET, BODY, &format!(" {signature} ")));
    assert!(verify_signature(SECRET, BODY, &format!("{signature}\r\n")));
}

#[test]
fn malformed_headers_are_rejected() {
    let signature = sign(SECRET, BODY);
    let flipped = {
        let mut s = signature.clone().into_bytes();
        s[0] = if s[0] == b'0' { b'1' } else { b'0' };
        String::from_utf8(s).unwrap()
    };
    for header in [
        String::new(),
        "   ".into(),
        flipped,
        signature[..39].into(),
        format!("{signature}0"),
        format!("{signature}{signature}"),
        format!("sha1={signature}"),
        format!("{}x", &signature[..39]),
        signature.replace(|c: char| c.is_ascii_alphabetic(), "z"),
        format!("{} {}", &signature[..20], &signature[20..]),
        "ü".repeat(20),
        sign(SECRET, b"other body"),
    ] {
        assert!(!verify_signature(SECRET, BODY, &header), "{header:?}");
    }
}

proptest! {
    #[test]
    fn verify_never_panics(secret in proptest::collection::vec(any::<u8>(), 0..200),
                           body in proptest::collection::vec(any::<u8>(), 0..2000),
                           header in ".{0,100}") {
        let _ = verify_signature(&secret, &body, &header);
    }

    #[test]
    fn hex_like_headers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..500),
                                    header in "[0-9a-fA-F \t]{0,50}") {
        let _ = verify_signature(SECRET, &body, &header);
    }

    #[test]
    fn own_signatures_verify(secret in proptest::collection::vec(any::<u8>(), 0..100),
                             body in proptest::collection::vec(any::<u8>(), 0..1000)) {
        let signature = sign(&secret, &body);
        prop_assert_eq!(&signature, &reference(&secret, &body));
        prop_assert!(verify_signature(&secret, &body, &signature));
    }
}
