//! Extra trusted certificates: a PEM file of CAs (a local server's self-signed one)
//! trusted beside the system's by every upstream client.

use crate::TransportInitError;
use std::path::Path;
use std::sync::Arc;

pub use reqwest::Certificate;

/// The certificates in the PEM file at `path`; an error when it cannot be read or
/// holds no certificate.
pub fn read_ca_file(path: &Path) -> Result<Vec<Certificate>, TransportInitError> {
    let why = |why: String| TransportInitError::ExtraCa { path: path.display().to_string(), why };
    let pem = std::fs::read(path).map_err(|e| why(e.to_string()))?;
    let certs = Certificate::from_pem_bundle(&pem).map_err(|_| why("not a PEM certificate file".into()))?;
    if certs.is_empty() {
        return Err(why("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// One TLS configuration for every lane of an HTTPS upstream trusted through the
/// system's roots alone, built as reqwest builds its own (the platform verifier, TLS
/// 1.2 and 1.3, ALPN h2 then HTTP/1.1). Each lane's client built by reqwest would read
/// and parse the system's root certificates again and keep them, with a session cache
/// of its own: about 100 KB per lane for the process's life (heaptrack, see
/// docs/performance.md). Its clones share the verifier and the session cache.
pub(crate) fn shared_client_tls() -> Result<rustls::ClientConfig, TransportInitError> {
    let err = |e: rustls::Error| TransportInitError::Client(format!("TLS configuration: {e}"));
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone()).map_err(err)?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(err)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(contents: Option<&[u8]>, expected: Result<usize, &str>) {
        let dir = std::env::temp_dir().join(format!("transport-http-roots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join(format!("ca-{}.pem", expected.map_or(0, |n| n)));
        let _ = std::fs::remove_file(&path);
        if let Some(c) = contents {
            std::fs::write(&path, c).expect("write");
        }
        let got = read_ca_file(&path).map(|c| c.len());
        match (got, expected) {
            (Ok(n), Ok(m)) => assert_eq!(n, m),
            (Err(e), Err(part)) => assert!(e.to_string().contains(part), "{e}"),
            (got, expected) => panic!("{:?} vs {expected:?}", got.map_err(|e| e.to_string())),
        }
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn reads_pem_certificates_or_says_why_not() {
        check(None, Err("cannot use"));
        check(Some(b"not a certificate"), Err("no PEM certificate"));
        check(Some(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"), Err("not a PEM"));
    }
}
