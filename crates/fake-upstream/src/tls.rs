//! The fake's HTTPS mode: a CA and a certificate for `127.0.0.1` and `localhost` made
//! at start (nothing on disk to expire or leak), served over rustls (ring, as the
//! workspace's rustls is built), offering HTTP/2 and HTTP/1.1 by ALPN, or HTTP/1.1 only.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;

/// Which protocols the fake offers by ALPN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alpn {
    /// `h2`, then `http/1.1`: a client that speaks HTTP/2 gets it (as from OpenRouter).
    H2,
    /// `http/1.1` only.
    Http1,
}

/// How the fake serves HTTPS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsOptions {
    pub alpn: Alpn,
    /// HTTP/2's `SETTINGS_MAX_CONCURRENT_STREAMS` per connection; `None` is hyper's
    /// default (200).
    pub max_concurrent_streams: Option<u32>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions { alpn: Alpn::H2, max_concurrent_streams: None }
    }
}

/// What the accept loop needs for HTTPS.
#[derive(Clone)]
pub(crate) struct Tls {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
    pub(crate) max_concurrent_streams: Option<u32>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("max_concurrent_streams", &self.max_concurrent_streams).finish()
    }
}

/// The server's TLS and the CA certificate (PEM) a client must trust to reach it; the
/// error says why not (a broken test machine, not a test outcome).
pub(crate) fn make(options: TlsOptions) -> Result<(Tls, String), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let ca_key = KeyPair::generate().map_err(|e| err(&e))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| err(&e))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "fake-upstream test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(|e| err(&e))?;
    let issuer = Issuer::new(ca_params, &ca_key);

    let leaf_key = KeyPair::generate().map_err(|e| err(&e))?;
    let mut leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).map_err(|e| err(&e))?;
    leaf_params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).map_err(|e| err(&e))?;

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca_cert.der().clone()], key)
        .map_err(|e| err(&e))?;
    config.alpn_protocols = match options.alpn {
        Alpn::H2 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        Alpn::Http1 => vec![b"http/1.1".to_vec()],
    };
    let tls = Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        max_concurrent_streams: options.max_concurrent_streams,
    };
    Ok((tls, ca_cert.pem()))
}
