//! Arbitrary text as a signed revocation list: parsed or refused, never a
//! panic; a parsed list survives its own encoding.
#![no_main]
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use mnp_ctrl::revocation::RevocationList;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let key = SigningKey::from_bytes(&[0x42; 32]).verifying_key();
    if let Ok(list) = RevocationList::parse(text) {
        let again = RevocationList::parse(&list.to_toml()).expect("own encoding parses");
        assert_eq!(again, list);
        let _ = list.verify(&key);
        let _ = list.admit(list.authority, &key, None);
    }
});
