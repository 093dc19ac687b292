//! The upstream TLS client: rustls with the ring provider, the built-in webpki roots plus the
//! PEM roots of `tls_ca_file`, and a handshake bounded by `upstream.tls_handshake_timeout`.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Why the TLS client could not be built from the configuration
#[derive(Debug)]
pub(crate) struct TlsSetupError(pub(crate) String);

impl std::fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The process's upstream TLS client (one per gateway: roots are read once, at start or reload)
#[derive(Clone)]
pub(crate) struct UpstreamTls {
    connector: TlsConnector,
    handshake_timeout: Duration,
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

/// Why the TLS step failed
#[derive(Debug)]
pub(crate) enum TlsStepError {
    /// No answer within `upstream.tls_handshake_timeout`
    TimedOut(Duration),
    /// The handshake failed (certificate, protocol, I/O)
    Failed(std::io::Error),
    /// The host cannot be a TLS server name
    BadName(String),
}

impl UpstreamTls {
    /// Webpki roots plus every certificate of the PEM file `extra_roots`, if any
    pub(crate) fn new(
        extra_roots: Option<&str>,
        handshake_timeout: Duration,
    ) -> Result<Self, TlsSetupError> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = extra_roots {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| TlsSetupError(format!("tls_ca_file {path}: {e}")))?;
            let mut added = 0usize;
            for cert in certs {
                let cert = cert.map_err(|e| TlsSetupError(format!("tls_ca_file {path}: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| TlsSetupError(format!("tls_ca_file {path}: {e}")))?;
                added += 1;
            }
            if added == 0 {
                return Err(TlsSetupError(format!(
                    "tls_ca_file {path}: no PEM certificate in the file"
                )));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError(format!("TLS protocol versions: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            handshake_timeout,
        })
    }

    /// Runs the TLS handshake for `host` over `io` under `upstream.tls_handshake_timeout`
    pub(crate) async fn connect<IO>(
        &self,
        host: &str,
        io: IO,
    ) -> Result<TlsStream<IO>, TlsStepError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| TlsStepError::BadName(format!("{host}: {e}")))?;
        match tokio::time::timeout(self.handshake_timeout, self.connector.connect(name, io)).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(TlsStepError::Failed(e)),
            Err(_) => Err(TlsStepError::TimedOut(self.handshake_timeout)),
        }
    }
}
