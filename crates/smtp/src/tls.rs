//! The STARTTLS certificate: from the configured PEM files, or a self-signed
//! one generated on first start under `data_dir/tls/` and reused afterwards.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: no certificate in the file")]
    NoCert(PathBuf),
    #[error("{0}: no private key in the file")]
    NoKey(PathBuf),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] tokio_rustls::rustls::Error),
    #[error("generating a self-signed certificate: {0}")]
    Generate(String),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Installs the ring crypto provider (once per process; later calls are no-ops).
pub fn install_provider() {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
}

/// A TLS acceptor from PEM files.
pub fn acceptor_from_files(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    install_provider();
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut BufReader::new(&cert_pem[..]))
            .collect::<Result<_, _>>()
            .map_err(|source| TlsError::Io {
                path: cert.to_path_buf(),
                source,
            })?;
    if certs.is_empty() {
        return Err(TlsError::NoCert(cert.to_path_buf()));
    }
    let key: PrivateKeyDer<'static> =
        rustls_pemfile::private_key(&mut BufReader::new(&key_pem[..]))
            .map_err(|source| TlsError::Io {
                path: key.to_path_buf(),
                source,
            })?
            .ok_or_else(|| TlsError::NoKey(key.to_path_buf()))?;
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The acceptor for `dir/cert.pem` + `dir/key.pem`, generating a self-signed
/// pair for `hostname` first if they do not exist (key file mode 0600).
pub fn self_signed_acceptor(dir: &Path, hostname: &str) -> Result<TlsAcceptor, TlsError> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if !cert.exists() || !key.exists() {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let ck = rcgen::generate_simple_self_signed(vec![hostname.to_string()])
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        write_private(&key, ck.key_pair.serialize_pem().as_bytes())?;
        std::fs::write(&cert, ck.cert.pem()).map_err(|source| TlsError::Io {
            path: cert.clone(),
            source,
        })?;
        tracing::info!(
            "generated a self-signed TLS certificate for {hostname} in {}",
            dir.display()
        );
    }
    acceptor_from_files(&cert, &key)
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(|source| TlsError::Io {
            path: path.to_path_buf(),
            source,
        })
}
