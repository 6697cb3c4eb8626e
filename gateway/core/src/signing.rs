//! The gateway's signatures (docs/SECURITY.md): the ingest receipt in every 202/200, and the detached
//! JWS (RFC 7515 appendix F) of every delivered document. ES256 through josekit; the `kid` is the
//! key's RFC 7638 JWK thumbprint.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use josekit::jwk::{Jwk, KeyPair};
use josekit::jws::alg::ecdsa::EcdsaJwsSigner;
use josekit::jws::{ES256, JwsHeader};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Why signing could not be set up or done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// The key file is missing, unreadable, or readable by group or others.
    #[error("{path}: {message}")]
    KeyFile { path: String, message: String },
    /// josekit refused.
    #[error("JOSE: {0}")]
    Jose(String),
}

/// A new P-256 signing key (PKCS#8 PEM), for the tests.
#[cfg(test)]
pub(crate) fn test_key() -> String {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .expect("a key")
        .serialize_pem()
}

/// Refuses a private key file that group or others may read.
pub fn refuse_if_readable_by_others(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "private key is readable by group or others (mode {mode:o}); chmod 600 it"
        ));
    }
    Ok(())
}

/// RFC 7638 thumbprint of an EC public JWK.
pub fn thumbprint(jwk: &Jwk) -> String {
    let p = |k: &str| {
        jwk.parameter(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let canonical = format!(
        r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
        p("crv"),
        p("x"),
        p("y")
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// base64url SHA-256 of bytes, as in the receipt's `body_sha256`.
pub fn sha256_b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(bytes))
}

/// The gateway's current signing key.
pub struct Signer {
    signer: EcdsaJwsSigner,
    kid: String,
    public: Jwk,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// What a delivered document's signature names.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryClaims<'a> {
    pub message_id: &'a str,
    pub message_type: &'a str,
    pub recipient: &'a str,
    pub issued_at: i64,
}

impl Signer {
    /// Loads a PKCS#8 PEM key, refusing one that group or others may read.
    pub fn load(path: &Path) -> Result<Self, SigningError> {
        let err = |m: String| SigningError::KeyFile {
            path: path.display().to_string(),
            message: m,
        };
        refuse_if_readable_by_others(path).map_err(err)?;
        let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        Self::from_pem(&pem).map_err(|e| err(e.to_string()))
    }

    pub fn from_pem(pem: &[u8]) -> Result<Self, SigningError> {
        let pair = EcKeyPair::from_pem(pem, Some(EcCurve::P256))
            .map_err(|e| SigningError::Jose(e.to_string()))?;
        let mut public = pair.to_jwk_public_key();
        let kid = thumbprint(&public);
        public.set_key_id(&kid);
        public.set_algorithm("ES256");
        public.set_key_use("sig");
        let mut signer = ES256
            .signer_from_pem(pem)
            .map_err(|e| SigningError::Jose(e.to_string()))?;
        signer.set_key_id(&kid);
        Ok(Self {
            signer,
            kid,
            public,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// `{"keys": [...]}` with every published key.
    pub fn jwks(&self) -> Value {
        json!({"keys": [serde_json::to_value(self.public.as_ref()).expect("a JWK is JSON")]})
    }

    fn sign(&self, payload: &[u8], header: &JwsHeader) -> Result<String, SigningError> {
        josekit::jws::serialize_compact(payload, header, &self.signer)
            .map_err(|e| SigningError::Jose(e.to_string()))
    }

    /// The ingest receipt: a compact JWS of the receipt claims.
    pub fn receipt(&self, claims: &Value) -> Result<String, SigningError> {
        let mut h = JwsHeader::new();
        h.set_token_type("jxg-receipt+jwt");
        h.set_key_id(&self.kid);
        self.sign(claims.to_string().as_bytes(), &h)
    }

    /// An audit checkpoint: a compact JWS over the seq and hash of an audit entry.
    pub fn checkpoint(&self, seq: u64, hash: &str, at: &str) -> Result<String, SigningError> {
        let mut h = JwsHeader::new();
        h.set_token_type("jxg-audit-checkpoint+jwt");
        h.set_key_id(&self.kid);
        let payload = serde_json::to_vec(&crate::audit::Checkpoint {
            seq,
            hash: hash.to_string(),
            at: at.to_string(),
        })
        .expect("JSON");
        self.sign(&payload, &h)
    }

    /// The detached JWS of delivered bytes: `header..signature`.
    pub fn detached(&self, bytes: &[u8], c: DeliveryClaims<'_>) -> Result<String, SigningError> {
        let mut h = JwsHeader::new();
        h.set_token_type("jxg+jws");
        h.set_key_id(&self.kid);
        let set = |h: &mut JwsHeader, k: &str, v: Value| {
            h.set_claim(k, Some(v))
                .map_err(|e| SigningError::Jose(e.to_string()))
        };
        set(&mut h, "jxg_id", json!(c.message_id))?;
        set(&mut h, "jxg_type", json!(c.message_type))?;
        set(&mut h, "jxg_recipient", json!(c.recipient))?;
        set(&mut h, "jxg_iat", json!(c.issued_at))?;
        let compact = self.sign(bytes, &h)?;
        let mut parts = compact.split('.');
        let (head, _, sig) = (parts.next(), parts.next(), parts.next());
        match (head, sig) {
            (Some(head), Some(sig)) => Ok(format!("{head}..{sig}")),
            _ => Err(SigningError::Jose("josekit produced no compact JWS".into())),
        }
    }
}

/// The message type a delivered copy's detached signature names (`jxg_type` in its protected
/// header): what the copy is, as the gateway signed it. A correction's copy of one recipient may
/// be a withdrawal (`message.withdrawn`) while the message itself is of the corrected type.
pub fn signed_type(detached: &str) -> Option<String> {
    let head = detached.split('.').next()?;
    let json = URL_SAFE_NO_PAD.decode(head).ok()?;
    // read on every delivery and inbox listing: the one claim, not the whole header as a value
    #[derive(serde::Deserialize)]
    struct Claim<'a> {
        #[serde(borrow)]
        jxg_type: Option<&'a str>,
    }
    let claim: Claim<'_> = serde_json::from_slice(&json).ok()?;
    claim.jxg_type.map(String::from)
}

/// Reads a JWKS file of public keys (ES256 or EdDSA) for verifying a sender's signatures.
pub fn load_jwks(path: &Path) -> Result<Vec<Jwk>, SigningError> {
    let err = |m: String| SigningError::KeyFile {
        path: path.display().to_string(),
        message: m,
    };
    let text = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let v: Value = serde_json::from_slice(&text).map_err(|e| err(e.to_string()))?;
    let keys = v["keys"]
        .as_array()
        .ok_or_else(|| err("a JWKS has a \"keys\" list".into()))?;
    keys.iter()
        .map(|k| {
            let map = k
                .as_object()
                .cloned()
                .ok_or_else(|| err("a key is a JSON object".into()))?;
            Jwk::from_map(map).map_err(|e| err(e.to_string()))
        })
        .collect()
}

/// Verifies a sender's compact JWS against its registered keys and returns the payload.
/// The key is chosen by `kid` (or tried in turn when there is none); only ES256 and EdDSA.
pub fn verify_sender(jws: &str, keys: &[Jwk]) -> Result<Vec<u8>, String> {
    let header = jws.split('.').next().ok_or("not a compact JWS")?;
    let header: Value = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or("the JWS header is not base64url JSON")?;
    let alg = header["alg"].as_str().unwrap_or_default();
    let kid = header["kid"].as_str();
    let candidates: Vec<&Jwk> = keys
        .iter()
        .filter(|k| kid.is_none() || k.key_id() == kid)
        .collect();
    if candidates.is_empty() {
        return Err("no registered key has the JWS's kid".into());
    }
    for k in candidates {
        let verified = match alg {
            "ES256" => ES256
                .verifier_from_jwk(k)
                .ok()
                .and_then(|v| josekit::jws::deserialize_compact(jws, &v).ok()),
            "EdDSA" => josekit::jws::EdDSA
                .verifier_from_jwk(k)
                .ok()
                .and_then(|v| josekit::jws::deserialize_compact(jws, &v).ok()),
            _ => {
                return Err(format!(
                    "the algorithm {alg:?} is not accepted (ES256, EdDSA)"
                ));
            }
        };
        if let Some((payload, _)) = verified {
            return Ok(payload);
        }
    }
    Err("the signature does not verify against the sender's registered keys".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detached_signatures_verify_over_the_exact_bytes_with_the_published_key() {
        let s = Signer::from_pem(crate::signing::test_key().as_bytes()).unwrap();
        let bytes = b"{\"a\":1}";
        let claims = DeliveryClaims {
            message_id: "m",
            message_type: "offence.reported",
            recipient: "prosecution",
            issued_at: 7,
        };
        let det = s.detached(bytes, claims).unwrap();
        let (head, sig) = det.split_once("..").unwrap();
        let jwk = Jwk::from_map(s.jwks()["keys"][0].as_object().unwrap().clone()).unwrap();
        let verifier = ES256.verifier_from_jwk(&jwk).unwrap();
        let full = format!("{head}.{}.{sig}", URL_SAFE_NO_PAD.encode(bytes));
        let (payload, header) = josekit::jws::deserialize_compact(&full, &verifier).unwrap();
        assert_eq!(payload, bytes);
        assert_eq!(header.claim("jxg_recipient"), Some(&json!("prosecution")));
        assert_eq!(header.key_id(), Some(s.kid()));
        let tampered = format!("{head}.{}.{sig}", URL_SAFE_NO_PAD.encode(b"{\"a\":2}"));
        assert!(josekit::jws::deserialize_compact(&tampered, &verifier).is_err());
    }

    #[test]
    fn a_key_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pem");
        std::fs::write(&p, crate::signing::test_key()).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            Signer::load(&p)
                .unwrap_err()
                .to_string()
                .contains("readable by group or others")
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Signer::load(&p).is_ok());
    }

    #[test]
    fn the_kid_is_the_rfc7638_thumbprint() {
        // RFC 7638 section 3.1's example is RSA; this EC vector is checked with an independent
        // computation of the same canonical JSON.
        let s = Signer::from_pem(crate::signing::test_key().as_bytes()).unwrap();
        let k = &s.jwks()["keys"][0];
        let canonical = format!(
            "{{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"{}\",\"y\":\"{}\"}}",
            k["x"].as_str().unwrap(),
            k["y"].as_str().unwrap()
        );
        assert_eq!(s.kid(), URL_SAFE_NO_PAD.encode(Sha256::digest(canonical)));
        assert_eq!(k["kid"], s.kid());
    }
}
