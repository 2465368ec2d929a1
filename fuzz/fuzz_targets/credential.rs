//! Arbitrary bytes as a credential: parsed or refused, never a panic; a
//! parsed one re-encodes to the same bytes, and verifies only if signed.
#![no_main]
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use mnp_ctrl::credential::Credential;

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::from_bytes(&[0x42; 32]);
    if let Ok(c) = Credential::from_bytes(data) {
        assert_eq!(&c.to_bytes()[..], &data[..c.to_bytes().len()]);
        if c.verify(&key.verifying_key()).is_ok() {
            // Only a credential the key signed verifies: re-signing its
            // claims gives the same signature (Ed25519 is deterministic).
            assert_eq!(Credential::issue(&key, &c.claims).to_bytes(), c.to_bytes());
        }
    }
});
