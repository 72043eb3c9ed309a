//! The answers a router must survive: a huge body, a data line that never ends, a
//! proxy's HTML page where JSON belongs, and compressed bodies.

use super::answers::ok;
use super::wire::{Ctx, FILLER_CHUNK, Reply, error_body, json_reply};
use bytes::Bytes;

/// A valid completion about `bytes` long (its content `a`s) in [`FILLER_CHUNK`] pieces.
pub(super) fn huge_body(ctx: &Ctx, bytes: usize, declared: bool) -> Reply {
    let head = format!(
        "{{{},\"object\":\"chat.completion\",\"choices\":[{{\"finish_reason\":\"stop\",\"index\":0,\
         \"message\":{{\"role\":\"assistant\",\"content\":\"",
        ctx.head
    );
    Reply::Large {
        content_type: "application/json",
        head: Bytes::from(head),
        filler: Bytes::from(vec![b'a'; FILLER_CHUNK]),
        repeat: bytes.div_ceil(FILLER_CHUNK),
        tail: Bytes::from_static(b"\"}}]}"),
        declared,
    }
}

/// A processing comment, then one `data:` line `bytes` long that never ends.
pub(super) fn endless_line(bytes: usize) -> Reply {
    Reply::Large {
        content_type: "text/event-stream",
        head: Bytes::from_static(b": OPENROUTER PROCESSING\n\ndata: {\"choices\":[{\"delta\":{\"content\":\""),
        filler: Bytes::from(vec![b'a'; FILLER_CHUNK]),
        repeat: bytes.div_ceil(FILLER_CHUNK),
        tail: Bytes::new(),
        declared: false,
    }
}

pub(super) fn html() -> Reply {
    Reply::Full {
        status: 200,
        headers: vec![("content-type", "text/html; charset=utf-8".to_owned())],
        body: Bytes::from_static(b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"),
    }
}

/// What `Ok` would send, compressed with `encoding` and said so in `content-encoding`.
pub(super) fn compressed(ctx: &Ctx, encoding: &str, stream: bool) -> Reply {
    let (content_type, plain) = match ok(ctx, stream) {
        Reply::Full { body, .. } => ("application/json", body),
        Reply::Sse(events) => {
            ("text/event-stream", events.into_iter().flat_map(|(_, b)| b).collect::<Vec<u8>>().into())
        }
        _ => return json_reply(500, error_body(500, "unreachable", None)),
    };
    Reply::Full {
        status: 200,
        headers: vec![("content-type", content_type.to_owned()), ("content-encoding", encoding.to_owned())],
        body: compress(encoding, &plain),
    }
}

/// `data` compressed with a `content-encoding`: `gzip`, `br`, `deflate` (zlib, as HTTP
/// means it) or `zstd`; anything else is left as it is.
pub(super) fn compress(encoding: &str, data: &[u8]) -> Bytes {
    use std::io::Write as _;
    let out = match encoding {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).and_then(|()| e.finish())
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).and_then(|()| e.finish())
        }
        "br" => {
            let mut out = Vec::new();
            let mut e = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            let written = e.write_all(data).and_then(|()| e.flush());
            drop(e);
            written.map(|()| out)
        }
        "zstd" => zstd::encode_all(data, 3),
        _ => Ok(data.to_vec()),
    };
    Bytes::from(out.unwrap_or_default())
}
