//! Arbitrary bytes as a peer health report: parsed or refused, never a
//! panic; a parsed one re-encodes to the same bytes.
#![no_main]
use ed25519_dalek::{SigningKey, Verifier};
use libfuzzer_sys::fuzz_target;
use mnp_ctrl::health::HealthReport;

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::from_bytes(&[0x42; 32]).verifying_key();
    if let Some(r) = HealthReport::from_bytes(data) {
        let bytes = r.to_bytes();
        assert_eq!(&bytes[..], &data[..bytes.len()]);
        let _ = key.verify(&r.message(), &r.signature());
    }
});
