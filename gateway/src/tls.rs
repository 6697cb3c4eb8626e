//! rustls server configuration shared by both listeners: TLS 1.3 and 1.2 with rustls' AEAD
//! suites, the `ring` provider, and a required client certificate chaining to the sector CA and
//! not revoked by the configured CRL.
//!
//! The certificate, key, CA bundle and CRL are read again when one of their files changes
//! ([`LiveTls::reload_if_changed`]): new handshakes use the new material, connections already
//! open keep the session they have. A set that does not load whole (a half-written file, a key
//! that does not match its certificate) is refused and the set in force stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

fn file_err(path: &Path, message: impl ToString) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Certificates from a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "holds no certificate"));
    }
    Ok(certs)
}

/// Certificate revocation lists from a PEM file (`X509 CRL` blocks).
pub fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let crls = CertificateRevocationListDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, e))?;
    if crls.is_empty() {
        return Err(file_err(path, "holds no CRL"));
    }
    Ok(crls)
}

/// The end of the validity of the first certificate in a PEM file, in Unix seconds.
pub fn not_after(path: &Path) -> Result<i64, TlsError> {
    let certs = load_certs(path)?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(certs[0].as_ref()).map_err(|e| file_err(path, e))?;
    Ok(cert.validity().not_after.timestamp())
}

/// The files a listener's TLS is made of.
#[derive(Debug, Clone)]
pub struct Paths {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Revoked client certificates; none when absent.
    pub crl: Option<PathBuf>,
}

impl Paths {
    fn all(&self) -> Vec<&Path> {
        let mut v = vec![self.ca.as_path(), self.cert.as_path(), self.key.as_path()];
        v.extend(self.crl.as_deref());
        v
    }
}

/// One loaded set of TLS material.
#[derive(Debug)]
struct Loaded {
    verifier: Arc<dyn ClientCertVerifier>,
    key: Arc<CertifiedKey>,
    /// When the gateway's certificate and the CA end (Unix seconds).
    ends: [(&'static str, i64); 2],
}

impl Loaded {
    fn read(paths: &Paths) -> Result<Self, TlsError> {
        crate::signing::refuse_if_readable_by_others(&paths.key)
            .map_err(|m| file_err(&paths.key, m))?;
        let mut roots = RootCertStore::empty();
        for c in load_certs(&paths.ca)? {
            roots.add(c).map_err(|e| file_err(&paths.ca, e))?;
        }
        let provider = provider();
        let mut builder =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
        if let Some(crl) = &paths.crl {
            // a client certificate whose revocation status the CRLs do not decide is refused
            builder = builder
                .with_crls(load_crls(crl)?)
                .only_check_end_entity_revocation();
        }
        let verifier = builder.build().map_err(|e| match &paths.crl {
            Some(crl) => file_err(crl, e),
            None => TlsError::Rustls(e.to_string()),
        })?;
        let chain = load_certs(&paths.cert)?;
        let key = PrivateKeyDer::from_pem_file(&paths.key).map_err(|e| file_err(&paths.key, e))?;
        let key = CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
            file_err(
                &paths.key,
                format!("does not go with {}: {e}", paths.cert.display()),
            )
        })?;
        Ok(Self {
            verifier,
            key: Arc::new(key),
            ends: [
                ("server", not_after(&paths.cert)?),
                ("ca", not_after(&paths.ca)?),
            ],
        })
    }
}

/// What a file was when last read: modification time, length and inode.
type Stamp = Option<(std::time::SystemTime, u64, u64)>;

fn stamps(paths: &Paths) -> Vec<Stamp> {
    use std::os::unix::fs::MetadataExt;
    paths
        .all()
        .into_iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len(), m.ino())))
        })
        .collect()
}

/// The TLS material both listeners use, swapped whole when its files change.
#[derive(Debug)]
pub struct LiveTls {
    paths: Paths,
    loaded: ArcSwap<Loaded>,
    /// The stamps of the last read and of the last refused read.
    read_at: Mutex<(Vec<Stamp>, Vec<Stamp>)>,
}

impl LiveTls {
    /// Reads every file; fails when any does not load.
    pub fn open(paths: Paths) -> Result<Arc<Self>, TlsError> {
        let read_at = stamps(&paths);
        let loaded = Loaded::read(&paths)?;
        Ok(Arc::new(Self {
            paths,
            loaded: ArcSwap::from_pointee(loaded),
            read_at: Mutex::new((read_at, Vec::new())),
        }))
    }

    /// Reads the files again when one has changed since the last read; `Ok(true)` when the new
    /// set is in force. On an error the set in force stays, and the files are read again once
    /// they change again.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = stamps(&self.paths);
        let mut guard = self.read_at.lock().unwrap_or_else(|e| e.into_inner());
        let (read_at, refused_at) = &mut *guard;
        if *read_at == now || *refused_at == now {
            return Ok(false);
        }
        match Loaded::read(&self.paths) {
            Ok(loaded) => {
                self.loaded.store(Arc::new(loaded));
                *read_at = now;
                Ok(true)
            }
            Err(e) => {
                *refused_at = now;
                Err(e)
            }
        }
    }

    /// When the gateway's certificate (`server`) and the CA (`ca`) in force end, Unix seconds.
    pub fn expiries(&self) -> [(&'static str, i64); 2] {
        self.loaded.load().ends
    }

    /// The certificates in force within `warning_days` of their end: (which, days left).
    pub fn expiring(&self, warning_days: u32) -> Vec<(&'static str, i64)> {
        let now = chrono::Utc::now().timestamp();
        self.expiries()
            .into_iter()
            .map(|(name, end)| (name, (end - now).div_euclid(86_400)))
            .filter(|(_, days_left)| *days_left < i64::from(warning_days))
            .collect()
    }

    /// The configuration of a listener, reading the material in force at each handshake.
    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, TlsError> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .with_client_cert_verifier(Arc::new(Live(self.clone())))
            .with_cert_resolver(Arc::new(Live(self.clone())));
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

/// The verifier and certificate resolver in force.
#[derive(Debug)]
struct Live(Arc<LiveTls>);

impl ResolvesServerCert for Live {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.loaded.load().key.clone())
    }
}

impl ClientCertVerifier for Live {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    // no hints: they would have to outlive a reload; a client presents its one certificate
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0
            .loaded
            .load()
            .verifier
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .loaded
            .load()
            .verifier
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .loaded
            .load()
            .verifier
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.loaded.load().verifier.supported_verify_schemes()
    }
}

/// The server configuration for a listener from fixed files (no reload).
pub fn server_config(ca: &Path, cert: &Path, key: &Path) -> Result<rustls::ServerConfig, TlsError> {
    LiveTls::open(Paths {
        ca: ca.into(),
        cert: cert.into(),
        key: key.into(),
        crl: None,
    })?
    .server_config()
}
