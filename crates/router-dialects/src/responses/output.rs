//! The response object (`object: "response"`) and its output items, for a whole answer
//! and for the snapshots a stream's events carry.

use crate::chat::{Answer, ChatError, Usage};
use serde_json::{Map, Value, json};

/// Who a response is: its id (`resp_…`), when it began, and the model that answers.
/// The server makes them (it has the clock); the translation only repeats them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseMeta {
    pub id: String,
    /// Unix seconds.
    pub created_at: u64,
    /// The exposed id of the free model that answered.
    pub model: String,
}

impl ResponseMeta {
    /// The id's tail, which the output items' ids repeat (`msg_<tail>`, `fc_<tail>_0`).
    pub(crate) fn tail(&self) -> &str {
        self.id.strip_prefix("resp_").unwrap_or(&self.id)
    }
}

/// How a response ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    InProgress,
    Completed,
    /// Cut short: `max_output_tokens` or `content_filter`.
    Incomplete(&'static str),
    Failed(ChatError),
}

impl Status {
    /// From the chat answer's `finish_reason`.
    pub(crate) fn of_finish(finish: Option<&str>) -> Status {
        match finish {
            Some("length") => Status::Incomplete("max_output_tokens"),
            Some("content_filter") => Status::Incomplete("content_filter"),
            _ => Status::Completed,
        }
    }

    /// The stream event that ends a response with this status.
    pub(crate) fn final_event(&self) -> &'static str {
        match self {
            Status::Incomplete(_) => "response.incomplete",
            Status::Failed(_) => "response.failed",
            Status::InProgress | Status::Completed => "response.completed",
        }
    }
}

/// The response object.
pub(crate) fn response(
    meta: &ResponseMeta,
    echo: &Map<String, Value>,
    status: &Status,
    output: Vec<Value>,
    usage: Option<&Usage>,
) -> Value {
    let mut out = echo.clone();
    out.insert("id".into(), Value::String(meta.id.clone()));
    out.insert("object".into(), Value::String("response".into()));
    out.insert("created_at".into(), json!(meta.created_at));
    out.insert("model".into(), Value::String(meta.model.clone()));
    let (status, incomplete, error) = match status {
        Status::InProgress => ("in_progress", Value::Null, Value::Null),
        Status::Completed => ("completed", Value::Null, Value::Null),
        Status::Incomplete(reason) => ("incomplete", json!({"reason": reason}), Value::Null),
        Status::Failed(e) => ("failed", Value::Null, error_object(e)),
    };
    out.insert("status".into(), Value::String(status.into()));
    out.insert("incomplete_details".into(), incomplete);
    out.insert("error".into(), error);
    out.insert("output".into(), Value::Array(output));
    out.insert("usage".into(), usage.map_or(Value::Null, usage_object));
    Value::Object(out)
}

/// A failed generation's `error` (`code` is the case, as OpenAI's `server_error`).
pub(crate) fn error_object(e: &ChatError) -> Value {
    let code = e.kind.clone().unwrap_or_else(|| "server_error".to_owned());
    json!({"code": code, "message": e.message})
}

pub(crate) fn usage_object(u: &Usage) -> Value {
    let total = if u.total_tokens > 0 { u.total_tokens } else { u.prompt_tokens + u.completion_tokens };
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": total,
    })
}

pub(crate) fn reasoning_item(id: &str, text: &str, done: bool) -> Value {
    let summary = if done { json!([{"type": "summary_text", "text": text}]) } else { json!([]) };
    json!({"type": "reasoning", "id": id, "summary": summary})
}

pub(crate) fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

pub(crate) fn refusal_part(text: &str) -> Value {
    json!({"type": "refusal", "refusal": text})
}

pub(crate) fn message_item(id: &str, content: Vec<Value>, done: bool) -> Value {
    let status = if done { "completed" } else { "in_progress" };
    json!({"type": "message", "id": id, "status": status, "role": "assistant", "content": content})
}

pub(crate) fn call_item(id: &str, call_id: &str, name: &str, arguments: &str, done: bool) -> Value {
    let status = if done { "completed" } else { "in_progress" };
    json!({"type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": arguments, "status": status})
}

/// A call's id, made when the upstream sent none.
pub(crate) fn call_id_or(id: &str, meta: &ResponseMeta, index: usize) -> String {
    if id.is_empty() { format!("call_{}_{index}", meta.tail()) } else { id.to_owned() }
}

/// A whole chat answer as a response object: reasoning, then the message, then the
/// function calls, in the order a model produces them.
pub fn answer_to_response(answer: &Answer, meta: &ResponseMeta, echo: &Map<String, Value>) -> Value {
    let tail = meta.tail();
    let mut output = Vec::new();
    if let Some(r) = answer.reasoning.as_deref() {
        output.push(reasoning_item(&format!("rs_{tail}"), r, true));
    }
    let mut content = Vec::new();
    if let Some(t) = answer.text.as_deref() {
        content.push(text_part(t));
    }
    if let Some(r) = answer.refusal.as_deref() {
        content.push(refusal_part(r));
    }
    if !content.is_empty() {
        output.push(message_item(&format!("msg_{tail}"), content, true));
    }
    for (i, call) in answer.tool_calls.iter().enumerate() {
        let call_id = call_id_or(&call.id, meta, i);
        output.push(call_item(&format!("fc_{tail}_{i}"), &call_id, &call.name, &call.arguments, true));
    }
    let status = Status::of_finish(answer.finish_reason.as_deref());
    // The answer names the model that wrote it (the router has set its exposed id).
    let named = ResponseMeta { model: answer.model.clone(), ..meta.clone() };
    let meta = if answer.model.is_empty() { meta } else { &named };
    response(meta, echo, &status, output, answer.usage.as_ref())
}
