//! The upstream TLS client: rustls with the ring provider, the built-in webpki roots plus the
//! PEM roots of `tls_ca_file`, and a handshake bounded by `upstream.tls_handshake_timeout`.

use std::sync::Arc;
use std::time::Duration;

use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::runtime::{BoxIo, Rt, timeout};

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
    /// Webpki roots plus every certificate of the PEM file `extra_roots`, if any; the error
    /// names the file
    pub(crate) fn new(
        extra_roots: Option<&str>,
        handshake_timeout: Duration,
    ) -> Result<Self, String> {
        Ok(Self {
            connector: TlsConnector::from(client_config(extra_roots)?),
            handshake_timeout,
        })
    }

    /// Runs the TLS handshake for `host` over `io` under `upstream.tls_handshake_timeout`
    pub(crate) async fn connect(
        &self,
        rt: &Rt,
        host: &str,
        io: BoxIo,
    ) -> Result<TlsStream<BoxIo>, TlsStepError> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| TlsStepError::BadName(format!("{host}: {e}")))?;
        match timeout(rt, self.handshake_timeout, self.connector.connect(name, io)).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(TlsStepError::Failed(e)),
            Err(_) => Err(TlsStepError::TimedOut(self.handshake_timeout)),
        }
    }
}

/// A rustls client with the ring provider trusting the webpki roots and, when named, the PEM
/// roots of the file `extra_roots` (`tls_ca_file`)
fn client_config(extra_roots: Option<&str>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = extra_roots {
        let bad_file = |e: &dyn std::fmt::Display| format!("tls_ca_file {path}: {e}");
        let mut added = 0usize;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad_file(&e))? {
            roots
                .add(cert.map_err(|e| bad_file(&e))?)
                .map_err(|e| bad_file(&e))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad_file(&"no PEM certificate in the file"));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS protocol versions: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_never_answers_times_out_at_exactly_the_tls_limit() {
        let tls = UpstreamTls::new(None, Duration::from_millis(300)).expect("webpki roots");
        // The far end reads the ClientHello and never answers.
        let (near, _far) = tokio::io::duplex(64 * 1024);
        let near: BoxIo = Box::new(async_tungstenite::tokio::TokioAdapter::new(near));
        let started = tokio::time::Instant::now();
        match tls.connect(&crate::test_rt(), "upstream.test", near).await {
            Err(TlsStepError::TimedOut(limit)) => assert_eq!(limit, Duration::from_millis(300)),
            other => panic!("expected the TLS timeout, got {:?}", other.map(|_| ())),
        }
        assert_eq!(started.elapsed(), Duration::from_millis(300));
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_naming_the_file() {
        let path = std::env::temp_dir().join(format!("wsv2-empty-ca-{}.pem", std::process::id()));
        std::fs::write(&path, "not a certificate\n").unwrap();
        let path_text = path.display().to_string();
        let err = UpstreamTls::new(Some(&path_text), Duration::from_secs(1)).unwrap_err();
        assert!(err.contains(&path_text), "{err}");
        assert!(err.contains("no PEM certificate"), "{err}");
        let missing = UpstreamTls::new(Some("/nonexistent/ca.pem"), Duration::from_secs(1));
        assert!(missing.unwrap_err().contains("/nonexistent/ca.pem"));
        let _ = std::fs::remove_file(path);
    }
}
