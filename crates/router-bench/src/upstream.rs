//! `--upstream`: how the fake upstream is served (plaintext HTTP/1.1, or HTTPS with
//! HTTP/1.1 or HTTP/2 by ALPN), and the direct runs' connections to it, which speak what
//! the router speaks to it: a direct request is what a client would pay without the router.

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use fake_upstream::{Alpn, FakeUpstream, TlsOptions};
use http_body_util::Full;
use hyper::Request;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;

/// The fake upstream's protocol, as `--upstream` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Upstream {
    /// Plaintext HTTP/1.1 (every figure before issue 27).
    H1,
    /// HTTPS, HTTP/1.1 only by ALPN.
    TlsH1,
    /// HTTPS, h2 by ALPN: as OpenRouter and the free tiers answer.
    TlsH2,
}

impl Upstream {
    pub(crate) fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "h1" => Upstream::H1,
            "tls-h1" => Upstream::TlsH1,
            "tls-h2" => Upstream::TlsH2,
            // The router speaks HTTP/2 only where ALPN offers it (reqwest has no h2c
            // upgrade, and prior knowledge is no upstream's way): there is nothing to measure.
            "h2" => {
                bail!("--upstream h2 (plaintext HTTP/2) is not offered: the router negotiates HTTP/2 only by TLS ALPN")
            }
            other => bail!("--upstream takes h1, tls-h1 or tls-h2, not `{other}`"),
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Upstream::H1 => "h1",
            Upstream::TlsH1 => "tls-h1",
            Upstream::TlsH2 => "tls-h2",
        }
    }

    pub(crate) fn tls(self) -> bool {
        self != Upstream::H1
    }

    /// Starts the fake upstream on the current runtime. Over HTTPS its HTTP/2 stream limit
    /// is hyper's default ([`FAKE_H2_STREAMS`]); the router's lanes keep under their own
    /// budget per connection.
    pub(crate) async fn start(self) -> FakeUpstream {
        match self {
            Upstream::H1 => FakeUpstream::start().await,
            Upstream::TlsH1 => {
                FakeUpstream::start_tls(TlsOptions { alpn: Alpn::Http1, max_concurrent_streams: None }).await
            }
            Upstream::TlsH2 => {
                let streams = Some(FAKE_H2_STREAMS);
                FakeUpstream::start_tls(TlsOptions { alpn: Alpn::H2, max_concurrent_streams: streams }).await
            }
        }
    }
}

/// The fake's `SETTINGS_MAX_CONCURRENT_STREAMS` over h2: hyper's server default, named.
pub(crate) const FAKE_H2_STREAMS: u32 = 200;

/// Where a load connection goes and how: plaintext HTTP/1.1 (the router, or a plaintext
/// fake), or TLS with the fake's CA trusted and ALPN offering what the fake offers.
#[derive(Clone)]
pub(crate) struct Dial {
    pub(crate) addr: SocketAddr,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Dial {
    pub(crate) fn plain(addr: SocketAddr) -> Self {
        Dial { addr, tls: None }
    }

    /// The fake upstream as the direct runs reach it: over TLS when it serves HTTPS.
    pub(crate) fn to_fake(fake: &FakeUpstream, upstream: Upstream) -> Result<Self> {
        let Some(pem) = fake.ca_pem() else { return Ok(Dial::plain(fake.addr())) };
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert.context("the fake's CA certificate")?)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = match upstream {
            Upstream::TlsH2 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            _ => vec![b"http/1.1".to_vec()],
        };
        Ok(Dial { addr: fake.addr(), tls: Some(tokio_rustls::TlsConnector::from(Arc::new(config))) })
    }

    /// One connection: TCP (no Nagle), then TLS and HTTP/2 or HTTP/1.1 as ALPN settled.
    pub(crate) async fn connect(&self) -> Result<Sender> {
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let host = self.addr.to_string();
        let Some(tls) = &self.tls else {
            let (sender, conn) = http1::handshake(TokioIo::new(tcp)).await?;
            tokio::spawn(conn);
            return Ok(Sender { host, conn: Conn::H1(sender) });
        };
        let name = ServerName::IpAddress(self.addr.ip().into());
        let stream = tls.connect(name, tcp).await?;
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
        let io = TokioIo::new(stream);
        let conn = if h2 {
            let (sender, conn) = http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(conn);
            Conn::H2(sender)
        } else {
            let (sender, conn) = http1::handshake(io).await?;
            tokio::spawn(conn);
            Conn::H1(sender)
        };
        Ok(Sender { host, conn })
    }
}

enum Conn {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// One connection's request sender, whichever protocol it speaks.
pub(crate) struct Sender {
    host: String,
    conn: Conn,
}

impl Sender {
    /// A JSON `POST` to `path` (an absolute URI over HTTP/2, which has no `Host`).
    pub(crate) fn post(&self, path: &str, body: Bytes) -> Result<Request<Full<Bytes>>> {
        let b = Request::post(path).header("content-type", "application/json");
        let b = match self.conn {
            Conn::H1(_) => b.header("host", &self.host),
            Conn::H2(_) => b.uri(format!("https://{}{path}", self.host)),
        };
        Ok(b.body(Full::new(body))?)
    }

    /// Waits until the connection can take the next request: after a streamed answer an
    /// HTTP/1.1 connection may not have taken the end of the body in yet.
    pub(crate) async fn ready(&mut self) -> Result<()> {
        match &mut self.conn {
            Conn::H1(s) => s.ready().await?,
            Conn::H2(s) => s.ready().await?,
        }
        Ok(())
    }

    pub(crate) async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<hyper::Response<Incoming>> {
        Ok(match &mut self.conn {
            Conn::H1(s) => s.send_request(req).await?,
            Conn::H2(s) => s.send_request(req).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Conn, Dial, Upstream};
    use http_body_util::BodyExt as _;

    /// The direct runs' connection speaks what the fake offers, and a chat request is
    /// answered over it.
    #[tokio::test]
    async fn the_direct_connection_speaks_the_fakes_protocol() {
        for u in [Upstream::H1, Upstream::TlsH1, Upstream::TlsH2] {
            let fake = u.start().await;
            let mut sender = Dial::to_fake(&fake, u).expect("dial").connect().await.expect("connect");
            assert_eq!(matches!(sender.conn, Conn::H2(_)), u == Upstream::TlsH2, "{u:?}");
            let model = fake_upstream::default_models().into_iter().find(|m| m.id.ends_with(":free")).expect("free");
            let body = serde_json::json!({"model": model.id, "messages": [{"role": "user", "content": "hi"}]});
            let req = sender.post("/api/v1/chat/completions", body.to_string().into()).expect("request");
            sender.ready().await.expect("ready");
            let resp = sender.send(req).await.expect("answer");
            assert_eq!(resp.status(), 200, "{u:?}");
            let text = resp.into_body().collect().await.expect("body").to_bytes();
            assert!(String::from_utf8_lossy(&text).contains("chat.completion"), "{u:?}");
        }
    }

    #[test]
    fn each_offered_upstream_reads_back_from_its_name_and_plaintext_h2_says_why_not() {
        for u in [Upstream::H1, Upstream::TlsH1, Upstream::TlsH2] {
            assert_eq!(Upstream::parse(u.name()).ok(), Some(u));
        }
        let h2 = Upstream::parse("h2").map(Upstream::name).map_err(|e| e.to_string());
        assert!(h2.as_ref().is_err_and(|e| e.contains("only by TLS ALPN")), "{h2:?}");
        assert!(Upstream::parse("h3").is_err());
    }
}
