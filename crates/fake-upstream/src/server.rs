//! The accept loop, one connection (plaintext HTTP/1.1, or TLS then HTTP/2 or HTTP/1.1 by
//! ALPN) and the routes: chat, embeddings, the catalogs and the key.

use crate::respond::{JSON, RespBody, error, full};
use crate::shared::{Shared, read};
use crate::{chat, embeddings, tls};
use http::{Method, Request, Response};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, tls: Option<tls::Tls>) {
    // Connection tasks live in this set, so aborting the loop closes them all.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                // Small writes must not wait for Nagle: SSE events and benchmark latency.
                let _ = stream.set_nodelay(true);
                conns.spawn(serve_connection(stream, shared.clone(), tls.clone()));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// One connection: plaintext HTTP/1.1, or TLS then whatever ALPN settled on. A client
/// going away mid-answer (or mid-handshake) is an expected outcome here.
async fn serve_connection(stream: TcpStream, shared: Arc<Shared>, tls: Option<tls::Tls>) {
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(shared, req).await) }
    });
    let Some(tls) = tls else {
        let io = hyper_util::rt::TokioIo::new(stream);
        let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
        return;
    };
    let Ok(stream) = tls.acceptor.accept(stream).await else { return };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    let io = hyper_util::rt::TokioIo::new(stream);
    if h2 {
        let mut builder = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
        if let Some(n) = tls.max_concurrent_streams {
            builder.max_concurrent_streams(n);
        }
        let _ = builder.serve_connection(io, service).await;
    } else {
        let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<RespBody> {
    let path = req.uri().path();
    match (req.method(), path.strip_prefix("/api/v1").or_else(|| path.strip_prefix("/v1")).unwrap_or(path)) {
        (&Method::POST, "/chat/completions") => chat::chat(shared, req).await,
        (&Method::POST, "/embeddings") => embeddings::embeddings(shared, req).await,
        (&Method::GET, "/models") => models(&shared),
        (&Method::GET, "/embeddings/models") => full(200, JSON, read(&shared.embedding_models).clone()),
        (&Method::GET, "/key") => full(200, JSON, read(&shared.key_info).clone()),
        _ => error(404, "Not Found"),
    }
}

/// `GET /models`: the catalog, or the status (and body) a test chose instead.
fn models(shared: &Shared) -> Response<RespBody> {
    shared.models_fetches.fetch_add(1, Ordering::Relaxed);
    let status = u16::try_from(shared.models_status.load(Ordering::Relaxed)).unwrap_or(500);
    match read(&shared.models_error_body).clone() {
        _ if status == 200 => full(200, JSON, read(&shared.models_body).clone()),
        Some(body) => full(status, JSON, body),
        None => error(status, "Internal Server Error"),
    }
}
