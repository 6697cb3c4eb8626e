//! Development PKI (`jxg certs init`): a sector CA, the gateway's server/client certificate, one
//! client certificate per registered authority and per admin role, the ES256 signing key and the
//! audit HMAC key. Every file is written mode 0600; nothing is overwritten without `force`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// Errors making certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertsError {
    /// A file exists and `--force` was not given.
    #[error("{0} exists; use --force to overwrite")]
    Exists(PathBuf),
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Reading the CA failed.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A certificate or CRL file that does not parse.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// rcgen refused.
    #[error("certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
}

/// The validity window of an issued certificate.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub not_before: time::OffsetDateTime,
    pub not_after: time::OffsetDateTime,
}

impl Validity {
    /// From a day ago to `days` from now.
    pub fn days(days: i64) -> Self {
        let now = time::OffsetDateTime::now_utc();
        Self {
            not_before: now - time::Duration::days(1),
            not_after: now + time::Duration::days(days),
        }
    }
}

/// A certificate and its key, PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Issues a certificate from the CA in `ca_pem`/`ca_key_pem`: a client certificate carrying
/// `san_uri` (and, for the gateway, the server names `localhost` and `127.0.0.1`).
pub fn issue(
    ca_pem: &str,
    ca_key_pem: &str,
    common_name: &str,
    san_uri: &str,
    server: bool,
    validity: Validity,
) -> Result<Issued, CertsError> {
    let ca_key = KeyPair::from_pem(ca_key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key)?;
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "jxg development");
    p.distinguished_name = dn;
    p.subject_alt_names.push(SanType::URI(san_uri.try_into()?));
    p.extended_key_usages
        .push(ExtendedKeyUsagePurpose::ClientAuth);
    if server {
        p.subject_alt_names
            .push(SanType::DnsName("localhost".try_into()?));
        p.subject_alt_names.push(SanType::IpAddress(
            "127.0.0.1".parse().expect("literal address"),
        ));
        p.extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // path builders that follow RFC 5280 strictly want the issuer's key identifier
    p.use_authority_key_identifier_extension = true;
    p.not_before = validity.not_before;
    p.not_after = validity.not_after;
    let cert = p.signed_by(&key, &issuer)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A self-signed CA (also used by tests to make "another CA").
pub fn new_ca(name: &str, validity: Validity) -> Result<Issued, CertsError> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = validity.not_before;
    p.not_after = validity.not_after;
    let cert = p.self_signed(&key)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The serial number of a certificate (DER).
pub fn serial(der: &[u8]) -> Option<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.raw_serial().to_vec())
}

/// The serial number of each certificate in a PEM text.
pub fn serials(cert_pem: &str) -> Result<Vec<Vec<u8>>, CertsError> {
    let mut out = Vec::new();
    for der in rustls_pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        let der = der.map_err(|_| rcgen::Error::CouldNotParseCertificate)?;
        out.push(serial(der.as_ref()).ok_or(rcgen::Error::CouldNotParseCertificate)?);
    }
    if out.is_empty() {
        return Err(rcgen::Error::CouldNotParseCertificate.into());
    }
    Ok(out)
}

/// The serials a CRL (PEM) revokes and its CRL number.
pub fn crl_contents(crl_pem: &str) -> Result<(Vec<Vec<u8>>, u64), CertsError> {
    let (mut revoked, mut number) = (Vec::new(), 0);
    for der in rustls_pki_types::CertificateRevocationListDer::pem_slice_iter(crl_pem.as_bytes()) {
        let der = der.map_err(|_| rcgen::Error::CouldNotParseCertificate)?;
        let (_, crl) = x509_parser::parse_x509_crl(der.as_ref())
            .map_err(|_| rcgen::Error::CouldNotParseCertificate)?;
        revoked.extend(
            crl.iter_revoked_certificates()
                .map(|r| r.raw_serial().to_vec()),
        );
        let n = crl
            .crl_number()
            .map(|n| n.to_u64_digits())
            .unwrap_or_default();
        number = number.max(n.first().copied().unwrap_or(0));
    }
    Ok((revoked, number))
}

/// A certificate revocation list from the CA in `ca_pem`/`ca_key_pem` revoking the certificates
/// with the given serial numbers, valid for `days`; `number` is the CRL number (higher is newer).
pub fn crl(
    ca_pem: &str,
    ca_key_pem: &str,
    serials: &[Vec<u8>],
    number: u64,
    days: i64,
) -> Result<String, CertsError> {
    let issuer = Issuer::from_ca_cert_pem(ca_pem, KeyPair::from_pem(ca_key_pem)?)?;
    let now = time::OffsetDateTime::now_utc();
    let revoked_certs = serials
        .iter()
        .map(|serial| rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from_slice(serial),
            revocation_time: now,
            reason_code: Some(rcgen::RevocationReason::KeyCompromise),
            invalidity_date: None,
        })
        .collect();
    let params = rcgen::CertificateRevocationListParams {
        this_update: now - time::Duration::minutes(5),
        next_update: now + time::Duration::days(days),
        crl_number: rcgen::SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    };
    Ok(params.signed_by(&issuer)?.pem()?)
}

/// `jxg certs revoke`: adds the certificates in `certs` to the CRL at `crl_path` (made when
/// absent), signed by the CA in `dir`, with the next CRL number. Returns how many it lists.
pub fn revoke(
    dir: &Path,
    crl_path: &Path,
    certs: &[PathBuf],
    days: i64,
) -> Result<usize, CertsError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| CertsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let (mut revoked, number) = match std::fs::metadata(crl_path) {
        Ok(_) => crl_contents(&read(crl_path)?).map_err(|e| CertsError::Parse {
            path: crl_path.to_path_buf(),
            message: format!("not a CRL this command can extend: {e}"),
        })?,
        Err(_) => (Vec::new(), 0),
    };
    for c in certs {
        let found = serials(&read(c)?).map_err(|e| CertsError::Parse {
            path: c.clone(),
            message: e.to_string(),
        })?;
        for serial in found {
            if !revoked.contains(&serial) {
                revoked.push(serial);
            }
        }
    }
    let pem = crl(
        &read(&dir.join("ca.pem"))?,
        &read(&dir.join("ca-key.pem"))?,
        &revoked,
        number + 1,
        days,
    )?;
    // written beside and renamed, so that a gateway reading it never sees half a CRL
    let tmp = crl_path.with_extension("pem.new");
    let _ = std::fs::remove_file(&tmp);
    write_private(&tmp, pem.as_bytes(), false)?;
    std::fs::rename(&tmp, crl_path).map_err(|source| CertsError::Write {
        path: crl_path.to_path_buf(),
        source,
    })?;
    Ok(revoked.len())
}

/// A new ES256 signing key, PKCS#8 PEM.
pub fn new_signing_key() -> Result<String, CertsError> {
    Ok(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?.serialize_pem())
}

fn write_private(path: &Path, bytes: &[u8], force: bool) -> Result<(), CertsError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).mode(0o600);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts.open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => CertsError::Exists(path.to_path_buf()),
        _ => CertsError::Write {
            path: path.to_path_buf(),
            source,
        },
    })?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|source| CertsError::Write {
            path: path.to_path_buf(),
            source,
        })
}

/// `jxg certs init`: every file in `dir` for the given authority ids. Returns the files written.
pub fn init(dir: &Path, authorities: &[String], force: bool) -> Result<Vec<PathBuf>, CertsError> {
    std::fs::create_dir_all(dir).map_err(|source| CertsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut names: Vec<String> = vec!["ca".into(), "gateway".into()];
    names.extend(authorities.iter().cloned());
    names.extend(["operator".to_string(), "auditor".to_string()]);
    let mut all: Vec<PathBuf> = names
        .iter()
        .flat_map(|n| {
            [
                dir.join(format!("{n}.pem")),
                dir.join(format!("{n}-key.pem")),
            ]
        })
        .collect();
    all.push(dir.join("signing-key.pem"));
    all.push(dir.join("audit-hmac.key"));
    if !force {
        if let Some(existing) = all.iter().find(|p| p.exists()) {
            return Err(CertsError::Exists(existing.clone()));
        }
    }
    let ca = new_ca("jxg development sector CA", Validity::days(3650))?;
    let put = |name: &str, i: &Issued| -> Result<(), CertsError> {
        write_private(
            &dir.join(format!("{name}.pem")),
            i.cert_pem.as_bytes(),
            force,
        )?;
        write_private(
            &dir.join(format!("{name}-key.pem")),
            i.key_pem.as_bytes(),
            force,
        )
    };
    put("ca", &ca)?;
    let v = Validity::days(825);
    put(
        "gateway",
        &issue(
            &ca.cert_pem,
            &ca.key_pem,
            "jxg gateway",
            "urn:jxg:gateway",
            true,
            v,
        )?,
    )?;
    for a in authorities {
        put(
            a,
            &issue(
                &ca.cert_pem,
                &ca.key_pem,
                a,
                &format!("urn:jxg:authority:{a}"),
                false,
                v,
            )?,
        )?;
    }
    for role in ["operator", "auditor"] {
        put(
            role,
            &issue(
                &ca.cert_pem,
                &ca.key_pem,
                role,
                &format!("urn:jxg:admin:{role}"),
                false,
                v,
            )?,
        )?;
    }
    write_private(
        &dir.join("signing-key.pem"),
        new_signing_key()?.as_bytes(),
        force,
    )?;
    let mut hmac = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut hmac).map_err(|_| {
        CertsError::Write {
            path: dir.join("audit-hmac.key"),
            source: std::io::Error::other("no randomness"),
        }
    })?;
    write_private(&dir.join("audit-hmac.key"), &hmac, force)?;
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn init_writes_every_file_private_and_never_overwrites_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let files = init(dir.path(), &["police".into()], false).unwrap();
        assert_eq!(files.len(), 12);
        for f in &files {
            let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", f.display());
        }
        assert!(matches!(
            init(dir.path(), &["police".into()], false),
            Err(CertsError::Exists(_))
        ));
        assert!(init(dir.path(), &["police".into()], true).is_ok());
        assert_eq!(
            std::fs::read(dir.path().join("audit-hmac.key"))
                .unwrap()
                .len(),
            32
        );
    }
}
