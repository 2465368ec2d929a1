//! Credentials: an authority's Ed25519-signed statement of a holder's claims
//! (docs/protocol.md §7).
//!
//! ```text
//! 0..4    magic "MNPC"
//! 4       version (1)
//! 5..8    reserved (0)
//! 8..40   claims block (as in the governance header)
//! 40..104 Ed25519 signature over SIGN_CONTEXT ‖ bytes 0..40
//! ```

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use mnp_dataplane::crypto::{derive_packet_key_for, PacketKey, ZoneSecret};
use mnp_dataplane::wire::governance::{Claims, CLAIMS_LEN};

pub const MAGIC: &[u8; 4] = b"MNPC";
pub const VERSION: u8 = 1;
pub const CREDENTIAL_LEN: usize = 104;
/// Prefixed to the signed bytes so a credential signature can never be
/// mistaken for a signature over anything else the authority signs.
pub const SIGN_CONTEXT: &[u8] = b"mnp-gateway v1 credential";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialError {
    #[error("credential is {0} bytes, expected {CREDENTIAL_LEN}")]
    Length(usize),
    #[error("not a credential (bad magic or version)")]
    Format,
    #[error("claims block has a non-zero reserved byte")]
    Claims,
    #[error("signature does not verify under the authority's public key")]
    Signature,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub claims: Claims,
    pub signature: [u8; 64],
}

fn signed_prefix(claims: &Claims) -> [u8; 40] {
    let mut b = [0u8; 40];
    b[..4].copy_from_slice(MAGIC);
    b[4] = VERSION;
    b[8..8 + CLAIMS_LEN].copy_from_slice(&claims.to_bytes());
    b
}

fn signed_message(prefix: &[u8; 40]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGN_CONTEXT.len() + 40);
    m.extend_from_slice(SIGN_CONTEXT);
    m.extend_from_slice(prefix);
    m
}

impl Credential {
    pub fn issue(key: &SigningKey, claims: &Claims) -> Self {
        let sig = key.sign(&signed_message(&signed_prefix(claims)));
        Self {
            claims: *claims,
            signature: sig.to_bytes(),
        }
    }

    pub fn to_bytes(&self) -> [u8; CREDENTIAL_LEN] {
        let mut b = [0u8; CREDENTIAL_LEN];
        b[..40].copy_from_slice(&signed_prefix(&self.claims));
        b[40..].copy_from_slice(&self.signature);
        b
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, CredentialError> {
        if b.len() != CREDENTIAL_LEN {
            return Err(CredentialError::Length(b.len()));
        }
        if &b[..4] != MAGIC || b[4] != VERSION || b[5..8] != [0, 0, 0] {
            return Err(CredentialError::Format);
        }
        let mut cb = [0u8; CLAIMS_LEN];
        cb.copy_from_slice(&b[8..40]);
        let claims = Claims::from_bytes(&cb).map_err(|_| CredentialError::Claims)?;
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&b[40..]);
        Ok(Self { claims, signature })
    }

    /// The exact bytes the signature covers (for batch verification).
    pub fn signed_message(&self) -> Vec<u8> {
        signed_message(&signed_prefix(&self.claims))
    }

    pub fn verify(&self, key: &VerifyingKey) -> Result<(), CredentialError> {
        let sig = Signature::from_bytes(&self.signature);
        key.verify(&signed_message(&signed_prefix(&self.claims)), &sig)
            .map_err(|_| CredentialError::Signature)
    }

    /// The holder's packet key, as the authority hands it out with the credential.
    pub fn packet_key(&self, secret: &ZoneSecret) -> PacketKey {
        derive_packet_key_for(secret, &self.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            authority: 1,
            epoch: 1,
            zone: 10,
            credential: 77,
            not_before: 0,
            not_after: u32::MAX,
            trust: 3,
            permitted: [20, 0, 0],
        }
    }

    #[test]
    fn issue_encode_verify() {
        let sk = SigningKey::from_bytes(&[4u8; 32]);
        let c = Credential::issue(&sk, &claims());
        let back = Credential::from_bytes(&c.to_bytes()).unwrap();
        assert_eq!(back, c);
        back.verify(&sk.verifying_key()).unwrap();
    }

    #[test]
    fn widened_or_forged_credentials_fail() {
        let sk = SigningKey::from_bytes(&[4u8; 32]);
        let mut b = Credential::issue(&sk, &claims()).to_bytes();
        b[8 + 24] += 1; // trust
        let c = Credential::from_bytes(&b).unwrap();
        assert_eq!(
            c.verify(&sk.verifying_key()),
            Err(CredentialError::Signature)
        );
        let other = SigningKey::from_bytes(&[5u8; 32]);
        let c = Credential::issue(&other, &claims());
        assert_eq!(
            c.verify(&sk.verifying_key()),
            Err(CredentialError::Signature)
        );
        assert_eq!(
            Credential::from_bytes(&b[..50]),
            Err(CredentialError::Length(50))
        );
        let mut b = c.to_bytes();
        b[0] = b'X';
        assert_eq!(Credential::from_bytes(&b), Err(CredentialError::Format));
    }
}
