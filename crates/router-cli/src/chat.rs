//! `router-cli chat`: builds a chat request from the prompt and options, routes it
//! through the core, and prints the answer (whole, or token by token from the SSE stream).

use anyhow::{Context, Result, bail};
use base64::Engine;
use router_core::sse::{LineSplitter, data_payload};
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;

/// What the user asked for.
#[derive(Debug, Default)]
pub(crate) struct Prompt {
    pub text: String,
    pub system: Option<String>,
    /// Image URLs (`https://...` or `data:` URLs).
    pub images: Vec<String>,
    /// A `response_format` value.
    pub response_format: Option<Value>,
    pub model: Option<String>,
    pub stream: bool,
    pub max_tokens: Option<u64>,
}

/// The chat-completion request body for `p`.
pub(crate) fn body(p: &Prompt) -> Value {
    let mut messages = Vec::new();
    if let Some(s) = &p.system {
        messages.push(json!({"role": "system", "content": s}));
    }
    let content = if p.images.is_empty() {
        json!(p.text)
    } else {
        let mut parts = vec![json!({"type": "text", "text": p.text})];
        parts.extend(p.images.iter().map(|url| json!({"type": "image_url", "image_url": {"url": url}})));
        Value::Array(parts)
    };
    messages.push(json!({"role": "user", "content": content}));
    let mut body = json!({
        "model": p.model.as_deref().unwrap_or("openrouter/free"),
        "messages": messages,
    });
    if let Value::Object(o) = &mut body {
        if p.stream {
            o.insert("stream".into(), json!(true));
        }
        if let Some(rf) = &p.response_format {
            o.insert("response_format".into(), rf.clone());
        }
        if let Some(n) = p.max_tokens {
            o.insert("max_tokens".into(), json!(n));
        }
    }
    body
}

/// An `--image` argument as a URL: URLs pass through, a local file becomes a base64
/// `data:` URL.
pub(crate) fn image_url(arg: &str) -> Result<String> {
    let lower = arg.to_ascii_lowercase();
    if ["http://", "https://", "data:"].iter().any(|p| lower.starts_with(p)) {
        return Ok(arg.to_owned());
    }
    let path = Path::new(arg);
    let bytes = std::fs::read(path).with_context(|| format!("cannot read image {arg}"))?;
    let Some(mime) = image_type(path, &bytes) else {
        bail!("cannot tell the image type of {arg}: use a png, jpeg, gif or webp file, or a url")
    };
    Ok(format!("data:{mime};base64,{}", base64::engine::general_purpose::STANDARD.encode(&bytes)))
}

/// The MIME type of an image, from its first bytes, else its extension.
fn image_type(path: &Path, bytes: &[u8]) -> Option<&'static str> {
    let sniffed = match bytes {
        [0x89, b'P', b'N', b'G', ..] => Some("image/png"),
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [b'G', b'I', b'F', b'8', ..] => Some("image/gif"),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some("image/webp"),
        _ => None,
    };
    sniffed.or_else(|| {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "png" => Some("image/png"),
            "jpg" | "jpeg" => Some("image/jpeg"),
            "gif" => Some("image/gif"),
            "webp" => Some("image/webp"),
            _ => None,
        }
    })
}

/// `response_format` for a JSON schema file. The file may hold the bare schema, or the
/// whole `json_schema` object (`{"name", "schema", "strict"}`) as OpenRouter takes it.
pub(crate) fn response_format(path: &Path) -> Result<Value> {
    let text = std::fs::read(path).with_context(|| format!("cannot read json schema {}", path.display()))?;
    let schema: Value =
        serde_json::from_slice(&text).with_context(|| format!("{} is not valid json", path.display()))?;
    if !schema.is_object() {
        bail!("{} must hold a json object (a json schema)", path.display());
    }
    let json_schema = if schema.get("schema").is_some_and(Value::is_object) {
        schema
    } else {
        let name: String = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(|s| s.split('.').next().unwrap_or(s))
            .unwrap_or("answer")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
            .collect();
        json!({"name": name, "strict": true, "schema": schema})
    };
    Ok(json!({"type": "json_schema", "json_schema": json_schema}))
}

/// The answer's text in a non-streamed response: the first choice's content, or, when
/// the model answered with tool calls instead, the message as JSON.
pub(crate) fn answer_text(body: &Value) -> Result<String> {
    if let Some(err) = body.get("error").filter(|e| !e.is_null()) {
        let msg = err.get("message").and_then(Value::as_str).unwrap_or("unknown error");
        bail!("the model answered with an error: {msg}");
    }
    let Some(message) = body.pointer("/choices/0/message") else {
        bail!("the answer has no choices[0].message");
    };
    match message.get("content") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ if message.get("tool_calls").is_some() => Ok(serde_json::to_string_pretty(message)?),
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Ok(String::new()),
    }
}

/// Prints the content deltas of an SSE stream as they arrive.
#[derive(Debug, Default)]
pub(crate) struct StreamPrinter {
    lines: LineSplitter,
    done: bool,
    /// The last character written, to end the answer with a newline.
    last: Option<char>,
    /// An error chunk seen in the stream.
    error: Option<String>,
}

impl StreamPrinter {
    /// Feeds a chunk of the stream; writes each content delta to `out` and flushes.
    pub(crate) fn feed(&mut self, chunk: &[u8], out: &mut dyn Write) -> std::io::Result<()> {
        let mut texts: Vec<String> = Vec::new();
        let (done, error) = (&mut self.done, &mut self.error);
        self.lines.feed(chunk, |line| {
            if *done || error.is_some() {
                return;
            }
            let Some(payload) = data_payload(line) else { return };
            if payload == b"[DONE]" {
                *done = true;
                return;
            }
            let Ok(v) = serde_json::from_slice::<Value>(payload) else { return };
            if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
                let msg = e.get("message").and_then(Value::as_str).unwrap_or("error in stream");
                *error = Some(msg.to_owned());
                return;
            }
            if let Some(Value::String(t)) = v.pointer("/choices/0/delta/content")
                && !t.is_empty()
            {
                texts.push(t.clone());
            }
        });
        for t in texts {
            out.write_all(t.as_bytes())?;
            out.flush()?;
            self.last = t.chars().last();
        }
        Ok(())
    }

    /// Ends the answer: a final newline, and the error chunk as an error.
    pub(crate) fn finish(&mut self, out: &mut dyn Write) -> Result<()> {
        if self.last.is_some_and(|c| c != '\n') {
            out.write_all(b"\n")?;
            out.flush()?;
        }
        match self.error.take() {
            Some(e) => bail!("the stream broke off: {e}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_body(p: &Prompt, expected: &str) {
        let expected: Value = serde_json::from_str(expected).expect("fixture json");
        assert_eq!(body(p), expected);
    }

    #[test]
    fn request_bodies() {
        check_body(
            &Prompt { text: "hi".into(), ..Prompt::default() },
            r#"{"model":"openrouter/free","messages":[{"role":"user","content":"hi"}]}"#,
        );
        check_body(
            &Prompt {
                text: "what is this".into(),
                system: Some("be brief".into()),
                images: vec!["data:image/png;base64,AAAA".into()],
                model: Some("a/b:free".into()),
                stream: true,
                max_tokens: Some(100),
                response_format: Some(json!({"type": "json_object"})),
            },
            r#"{"model":"a/b:free","stream":true,"max_tokens":100,"response_format":{"type":"json_object"},
                "messages":[{"role":"system","content":"be brief"},
                {"role":"user","content":[{"type":"text","text":"what is this"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#,
        );
    }

    #[test]
    fn images_and_schemas() {
        let dir = tempfile::tempdir().expect("temp dir");
        let png = dir.path().join("pixel.bin");
        std::fs::write(&png, [0x89, b'P', b'N', b'G', 0, 1]).expect("write fixture");
        assert_eq!(image_url(&png.display().to_string()).expect("png"), "data:image/png;base64,iVBORwAB");
        let jpg = dir.path().join("x.JPG");
        std::fs::write(&jpg, b"abc").expect("write fixture");
        assert_eq!(image_url(&jpg.display().to_string()).expect("jpg"), "data:image/jpeg;base64,YWJj");
        let txt = dir.path().join("x.txt");
        std::fs::write(&txt, b"abc").expect("write fixture");
        let err = image_url(&txt.display().to_string()).expect_err("not an image").to_string();
        assert!(err.starts_with("cannot tell the image type"), "{err}");
        assert_eq!(image_url("https://x/y.png").expect("url"), "https://x/y.png");

        let schema = dir.path().join("person.schema.json");
        std::fs::write(&schema, r#"{"type":"object"}"#).expect("write fixture");
        assert_eq!(
            response_format(&schema).expect("schema"),
            json!({"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":{"type":"object"}}})
        );
        std::fs::write(&schema, r#"{"name":"p","schema":{"type":"object"}}"#).expect("write fixture");
        assert_eq!(
            response_format(&schema).expect("schema"),
            json!({"type":"json_schema","json_schema":{"name":"p","schema":{"type":"object"}}})
        );
    }

    /// Feeds `chunks` to a printer; `expected` is what it printed, then `error: ...`
    /// when the stream carried an error.
    fn check_stream(chunks: &[&str], expected: &str) {
        let mut p = StreamPrinter::default();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c.as_bytes(), &mut out).expect("vec write");
        }
        let end = p.finish(&mut out);
        let mut got = String::from_utf8(out).expect("utf-8");
        if let Err(e) = end {
            got.push_str(&format!("error: {e}"));
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn streams() {
        let delta = |t: &str| format!("data: {{\"choices\":[{{\"delta\":{{\"content\":{t:?}}}}}]}}\n\n");
        check_stream(&[": OPENROUTER PROCESSING\n\n", &delta("Hel"), &delta("lo"), "data: [DONE]\n\n"], "Hello\n");
        // A line split across chunks, and a role-only first delta.
        let d = delta("world");
        let (a, b) = d.split_at(20);
        check_stream(&["data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n", a, b], "world\n");
        check_stream(
            &[&delta("par"), "data: {\"error\":{\"code\":400,\"message\":\"Token limit reached\"}}\n\n"],
            "par\nerror: the stream broke off: Token limit reached",
        );
    }

    #[test]
    fn answers() {
        let ok = json!({"choices":[{"message":{"role":"assistant","content":"Paris"}}]});
        assert_eq!(answer_text(&ok).expect("answer"), "Paris");
        let tools = json!({"choices":[{"message":{"content":null,"tool_calls":[{"id":"1"}]}}]});
        assert!(answer_text(&tools).expect("answer").contains("tool_calls"));
        let err = json!({"error":{"message":"boom"}});
        assert_eq!(answer_text(&err).expect_err("error").to_string(), "the model answered with an error: boom");
    }
}
