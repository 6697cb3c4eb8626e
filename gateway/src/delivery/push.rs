//! The push transport: HTTPS POST of the exact bytes to the recipient's webhook, with the
//! gateway's client certificate, `JXG-Signature`, `JXG-Message-Id`, the format's `Content-Type`
//! and `traceparent`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use super::{Outcome, Transport};
use crate::store::OutboxEntry;
use crate::tls::{TlsError, load_certs, provider};

pub struct PushTransport {
    client: reqwest::Client,
    url: String,
}

impl PushTransport {
    /// A client that presents `cert`/`key` and trusts the CA in `ca`.
    pub fn new(
        url: &str,
        ca: &Path,
        cert: &Path,
        key: &Path,
        timeout: Duration,
    ) -> Result<Self, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for c in load_certs(ca)? {
            roots.add(c).map_err(|e| TlsError::Rustls(e.to_string()))?;
        }
        let chain = load_certs(cert)?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::File {
            path: key.display().to_string(),
            message: e.to_string(),
        })?;
        let tls = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .with_root_certificates(Arc::new(roots))
            .with_client_auth_cert(chain, key)
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        Ok(Self {
            client,
            url: url.to_string(),
        })
    }
}

fn content_type(entry: &OutboxEntry) -> String {
    match entry.format.as_str() {
        "court-xml" => "application/xml; charset=UTF-8".into(),
        "police-json" | "canonical" => "application/json".into(),
        _ => entry.media_type.clone(),
    }
}

impl Transport for PushTransport {
    fn via(&self) -> &'static str {
        "push"
    }

    fn deliver<'a>(&'a self, entry: &'a OutboxEntry, bound: Duration) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let mut req = self
                .client
                .post(&self.url)
                .header("Content-Type", content_type(entry))
                .header("JXG-Signature", &entry.signature)
                .header("JXG-Message-Id", entry.message_id.to_string())
                .timeout(bound)
                .body(entry.content.clone());
            if let Some(t) = &entry.traceparent {
                req = req.header("traceparent", t);
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => Outcome::Delivered,
                Ok(r) => {
                    let s = r.status().as_u16();
                    let why = format!("HTTP {s}");
                    if (400..500).contains(&s) && s != 408 && s != 429 {
                        Outcome::Permanent(why)
                    } else {
                        Outcome::Retry(why)
                    }
                }
                Err(e) if e.is_timeout() => {
                    Outcome::Retry(format!("no answer within {} s", bound.as_secs()))
                }
                Err(e) if e.is_connect() => Outcome::Retry("connection failed".into()),
                Err(_) => Outcome::Retry("request failed".into()),
            }
        })
    }
}
