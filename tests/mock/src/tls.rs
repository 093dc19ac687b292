//! TLS for a mock that serves `wss://` and `https://` (`MockConfig::tls`), so loopback runs pay a
//! real upstream's handshake: the gateway trusts the certificate through its `tls_ca_file`.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::MockTls;

/// The acceptor for `files`, or an error naming the file that could not be used.
pub(crate) fn acceptor(files: &MockTls) -> std::io::Result<TlsAcceptor> {
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what}: {e}"))
    };
    let certs = CertificateDer::pem_file_iter(&files.cert_pem)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| invalid(&format!("certificate {}", files.cert_pem.display()), &e))?;
    let key = PrivateKeyDer::from_pem_file(&files.key_pem)
        .map_err(|e| invalid(&format!("private key {}", files.key_pem.display()), &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("TLS versions", &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid("TLS certificate", &e))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
