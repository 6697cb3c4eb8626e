//! What an authority system needs to talk to the gateway: an HTTPS client holding its client
//! certificate, and verification of what the gateway signs against its JWKS. Used by
//! `jxg-tools simulate` and by the end-to-end tests.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

/// A client trusting `ca_pem`, presenting `identity` (certificate and key PEM) when given.
pub fn client(ca_pem: &str, identity: Option<(&str, &str)>) -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(c.map_err(|e| format!("CA certificate: {e}"))?)
            .map_err(|e| format!("CA certificate: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let tls = match identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client certificate: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|e| format!("client key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())
}

/// Verifies a compact JWS (ES256) against a JWKS; returns payload and header.
pub fn verify_compact(jws: &str, jwks: &Value) -> Result<(Vec<u8>, Value), String> {
    let header: Value = {
        let h = jws.split('.').next().ok_or("no header")?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?
    };
    let kid = header["kid"].as_str().ok_or("no kid")?;
    let key = jwks["keys"]
        .as_array()
        .ok_or("no keys")?
        .iter()
        .find(|k| k["kid"] == kid)
        .ok_or("unknown kid")?;
    let map = key.as_object().ok_or("a key is not an object")?.clone();
    let jwk = josekit::jwk::Jwk::from_map(map).map_err(|e| e.to_string())?;
    let verifier = josekit::jws::ES256
        .verifier_from_jwk(&jwk)
        .map_err(|e| e.to_string())?;
    let (payload, _) =
        josekit::jws::deserialize_compact(jws, &verifier).map_err(|e| e.to_string())?;
    Ok((payload, header))
}

/// Verifies a detached JWS (`header..signature`) over `bytes`; returns its header.
pub fn verify_detached(detached: &str, bytes: &[u8], jwks: &Value) -> Result<Value, String> {
    let (head, sig) = detached.split_once("..").ok_or("not a detached JWS")?;
    let full = format!("{head}.{}.{sig}", URL_SAFE_NO_PAD.encode(bytes));
    verify_compact(&full, jwks).map(|(_, h)| h)
}
