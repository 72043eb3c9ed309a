//! A Responses request (`POST /v1/responses`) as a chat-completions body: the top-level
//! members (model, tools, output format, sampling, stateless refusals). The `input` items
//! become messages in [`super::input`].

use super::error::InvalidRequest;
use super::input::{Message, messages};
use crate::json_out::{Seq, string};
use crate::tree::Json;
use router_core::WrittenMember;
use serde_json::{Value, json};
use top::Top;

/// What becomes of a tool the router cannot serve for free (web search, file search,
/// MCP, code interpreter, custom grammars, ...): left out and named, or refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ToolPolicy {
    /// Left out of the request; named in the answer's header. Codex CLI always sends some.
    #[default]
    Drop,
    /// The whole request is refused with a 400 naming the tool.
    Refuse,
}

/// Whether tools the router cannot serve are refused rather than dropped, by default
/// (dropped: Codex CLI always sends some).
pub const DEFAULT_REFUSE_UNSERVED_TOOLS: bool = false;

impl ToolPolicy {
    /// The policy for the `responses_refuse_unserved_tools` setting.
    pub fn refusing(refuse: bool) -> Self {
        if refuse { ToolPolicy::Refuse } else { ToolPolicy::Drop }
    }
}

/// The model a request without `model` is routed to.
pub const DEFAULT_MODEL: &str = "openrouter/free";

/// A Responses request translated for the router.
#[derive(Clone, Debug)]
pub struct Translated {
    /// The chat-completions body (JSON).
    pub chat: Vec<u8>,
    /// Where each of its top-level members lies, for [`router_core::ChatRequest::from_written`].
    pub members: Vec<WrittenMember>,
    /// Whether the client asked for the event stream.
    pub stream: bool,
    /// The tools left out, as `type` or `type:name`, in the request's order.
    pub dropped_tools: Vec<String>,
    /// The conversation's key from the body: `prompt_cache_key`, else
    /// `safety_identifier`, else `user` (a `session-id` header wins over all three).
    pub session: Option<String>,
    /// The request's members that the response object repeats (`instructions`, `tools`,
    /// `temperature`, `metadata`, ...), as JSON members without their braces.
    pub echo: Vec<u8>,
}

/// Translates a Responses request body into a chat-completions body.
pub fn to_chat(body: &[u8], policy: ToolPolicy) -> Result<Translated, InvalidRequest> {
    let req = Json::parse(body)
        .map_err(|e| InvalidRequest::new(format!("the body is not valid JSON: {e}"), "body", "invalid_json"))?;
    if !req.is_object() {
        return Err(InvalidRequest::new("the body must be a JSON object", "body", "invalid_json"));
    }
    let top = Top::of(&req);
    refuse_state(&top)?;
    let model = model(&top)?;
    let system = match top.instructions {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(Message::text("system", s)),
        Some(_) => return Err(invalid("`instructions` must be a string", "instructions")),
    };
    let msgs = messages(system, top.input)?;
    // The chat body is written as it is read, without a tree of its own.
    let mut out = Vec::with_capacity(body.len() + CHAT_BODY_EXTRA);
    let mut chat = Seq::object_spanned(&mut out, CHAT_MEMBERS);
    string(chat.key("model"), model);
    let mut list = Seq::array(chat.key("messages"));
    for m in &msgs {
        m.write(list.item());
    }
    list.end();

    let stream = match top.stream {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(_) => return Err(invalid("`stream` must be a boolean", "stream")),
    };
    if stream {
        chat.key("stream").extend_from_slice(b"true");
        chat.key("stream_options").extend_from_slice(b"{\"include_usage\":true}");
    }
    let (echo_tools, dropped_tools) = write_tools(&top, policy, &mut chat)?;
    write_sampling(&top, &mut chat)?;
    let members = chat.end_spanned();
    let session = [top.prompt_cache_key, top.safety_identifier, top.user]
        .into_iter()
        .find_map(|v| v.and_then(Json::as_str).filter(|s| !s.is_empty()))
        .map(str::to_owned);
    let echo = echo(&top, &echo_tools);
    Ok(Translated { chat: out, members, stream, dropped_tools, session, echo })
}

/// `tools`, `tool_choice` and `parallel_tool_calls` into the chat body; returns the
/// function tools (which the response echoes), and the tools left out.
fn write_tools<'j, 'a>(
    req: &Top<'j, 'a>,
    policy: ToolPolicy,
    chat: &mut Seq<'_>,
) -> Result<(Vec<FunctionTool<'j, 'a>>, Vec<String>), InvalidRequest> {
    let (tools, dropped_tools) = tools(req.tools, policy)?;
    if !tools.is_empty() {
        let mut list = Seq::array(chat.key("tools"));
        for tool in &tools {
            tool.write_chat(list.item());
        }
        list.end();
        if let Some(choice) = tool_choice(req.tool_choice)? {
            value(chat.key("tool_choice"), &choice);
        }
        if let Some(p) = req.parallel_tool_calls.filter(|v| !v.is_null()) {
            p.write_json(chat.key("parallel_tool_calls"));
        }
    } else if let Some(o @ Json::Object(_)) = req.tool_choice {
        // Forcing a tool that is not there cannot be served.
        if o.get("type").and_then(Json::as_str) != Some("allowed_tools") {
            return Err(invalid("`tool_choice` names a tool this request does not offer", "tool_choice"));
        }
    } else if req.tool_choice.and_then(Json::as_str) == Some("required") {
        return Err(invalid("`tool_choice` is `required` but no tool the router serves is offered", "tool_choice"));
    }
    Ok((tools, dropped_tools))
}

/// `max_output_tokens`, `temperature`, `top_p`, `text.format`, `reasoning.effort` and
/// `user` into the chat body.
fn write_sampling(req: &Top<'_, '_>, chat: &mut Seq<'_>) -> Result<(), InvalidRequest> {
    if let Some(n) = req.max_output_tokens.filter(|v| !v.is_null()) {
        if !n.is_u64() {
            return Err(invalid("`max_output_tokens` must be a non-negative integer", "max_output_tokens"));
        }
        n.write_json(chat.key("max_tokens"));
    }
    for (key, given) in [("temperature", req.temperature), ("top_p", req.top_p)] {
        if let Some(v) = given.filter(|v| !v.is_null()) {
            if !v.is_number() {
                return Err(invalid(format!("`{key}` must be a number"), key));
            }
            v.write_json(chat.key(key));
        }
    }
    if let Some(format) = response_format(req.text)? {
        format.write(chat.key("response_format"));
    }
    if let Some(effort) = req.reasoning.and_then(|r| r.get("effort")).filter(|e| !e.is_null()) {
        let Some(e) = effort.as_str() else { return Err(invalid("`reasoning.effort` must be a string", "reasoning")) };
        let o = chat.key("reasoning");
        o.extend_from_slice(b"{\"effort\":");
        string(o, e);
        o.push(b'}');
    }
    if let Some(user) = req.user.filter(|v| v.is_string()) {
        user.write_json(chat.key("user"));
    }
    Ok(())
}

/// The most members a chat body written here has (model, messages, stream and its
/// options, three of tools, four of sampling, format, reasoning, user).
const CHAT_MEMBERS: usize = 14;

/// Room for what the chat body adds to the request's size, so that writing it seldom
/// grows the buffer.
const CHAT_BODY_EXTRA: usize = 128;

/// A tree the translation built (a forced tool choice), as JSON.
fn value(out: &mut Vec<u8>, v: &Value) {
    let _ = serde_json::to_writer(&mut *out, v);
}

fn invalid(message: impl Into<String>, param: &str) -> InvalidRequest {
    InvalidRequest::new(message, param, "invalid_value")
}

/// The router keeps nothing between requests: what would need a stored response or
/// conversation is refused, as OpenRouter's stateless endpoint does.
fn refuse_state(req: &Top<'_, '_>) -> Result<(), InvalidRequest> {
    let stateless = |what: &str, param: &str| {
        InvalidRequest::new(
            format!(
                "{what}: the router is stateless and stores no responses; send `store: false` (or leave it out) \
                 and the whole conversation in `input`"
            ),
            param,
            "stateless",
        )
    };
    if req.store == Some(&Json::Bool(true)) {
        return Err(stateless("`store: true` is not supported", "store"));
    }
    let stored = [
        ("previous_response_id", req.previous_response_id),
        ("conversation", req.conversation),
        ("prompt", req.prompt),
    ];
    for (key, given) in stored {
        if given.is_some_and(|v| !v.is_null()) {
            return Err(stateless(&format!("`{key}` is not supported"), key));
        }
    }
    if req.background == Some(&Json::Bool(true)) {
        return Err(stateless("`background: true` is not supported", "background"));
    }
    Ok(())
}

fn model<'j>(req: &Top<'j, '_>) -> Result<&'j str, InvalidRequest> {
    match req.model {
        None | Some(Json::Null) => Ok(DEFAULT_MODEL),
        Some(Json::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(invalid("`model` must be a non-empty string", "model")),
    }
}

/// A function tool, borrowed from the request: written as chat's tool, and echoed in the
/// response's flat shape, its values in the order the client wrote them (a schema's
/// property order is what structured output follows), with no tree of its own.
struct FunctionTool<'j, 'a> {
    name: &'j str,
    description: Option<&'j Json<'a>>,
    parameters: Option<&'j Json<'a>>,
    strict: Option<&'j Json<'a>>,
}

impl FunctionTool<'_, '_> {
    /// Chat's nested shape: `{"type":"function","function":{…}}`.
    fn write_chat(&self, out: &mut Vec<u8>) {
        let mut tool = Seq::object(out);
        string(tool.key("type"), "function");
        let mut function = Seq::object(tool.key("function"));
        self.write_members(&mut function, None);
        function.end();
        tool.end();
    }

    /// The flat Responses shape the response echoes: `strict` is `false` when not given.
    fn write_flat(&self, out: &mut Vec<u8>) {
        let mut tool = Seq::object(out);
        string(tool.key("type"), "function");
        self.write_members(&mut tool, Some(&Json::Bool(false)));
        tool.end();
    }

    fn write_members(&self, o: &mut Seq<'_>, strict_default: Option<&Json<'_>>) {
        string(o.key("name"), self.name);
        if let Some(d) = self.description {
            d.write_json(o.key("description"));
        }
        if let Some(p) = self.parameters {
            p.write_json(o.key("parameters"));
        }
        if let Some(s) = self.strict.or(strict_default) {
            s.write_json(o.key("strict"));
        }
    }
}

/// The function tools, and the names of the tools left out.
fn tools<'j, 'a>(
    tools: Option<&'j Json<'a>>,
    policy: ToolPolicy,
) -> Result<(Vec<FunctionTool<'j, 'a>>, Vec<String>), InvalidRequest> {
    let list = match tools {
        None | Some(Json::Null) => return Ok((Vec::new(), Vec::new())),
        Some(Json::Array(list)) => list,
        Some(_) => return Err(invalid("`tools` must be an array", "tools")),
    };
    let mut kept = Vec::with_capacity(list.len());
    let mut dropped = Vec::new();
    for (i, tool) in list.iter().enumerate() {
        let param = format!("tools[{i}]");
        let kind = tool.get("type").and_then(Json::as_str).ok_or_else(|| invalid("a tool needs a `type`", &param))?;
        if kind != "function" {
            let label = match tool.get("name").and_then(Json::as_str) {
                Some(name) => format!("{kind}:{name}"),
                None => kind.to_owned(),
            };
            if policy == ToolPolicy::Refuse {
                return Err(InvalidRequest::new(
                    format!(
                        "tool `{label}` is not served: the free router forwards only `function` tools (hosted tools \
                         such as web search can bill, and the others need a server the router does not have)"
                    ),
                    param,
                    "unsupported_tool",
                ));
            }
            dropped.push(label);
            continue;
        }
        // The flat Responses shape, or chat's nested one from clients that mix them.
        let def = tool.get("function").filter(|f| f.is_object()).unwrap_or(tool);
        let name = def.get("name").and_then(Json::as_str).filter(|n| !n.is_empty());
        let Some(name) = name else { return Err(invalid("a function tool needs a `name`", &param)) };
        let given = |key: &str| def.get(key).filter(|v| !v.is_null());
        kept.push(FunctionTool {
            name,
            description: given("description"),
            parameters: given("parameters"),
            strict: given("strict"),
        });
    }
    Ok((kept, dropped))
}

fn tool_choice(choice: Option<&Json<'_>>) -> Result<Option<Value>, InvalidRequest> {
    let bad = || invalid("`tool_choice` must be `auto`, `none`, `required` or a function", "tool_choice");
    match choice {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) if matches!(s.as_ref(), "auto" | "none" | "required") => {
            Ok(Some(Value::String(s.to_string())))
        }
        Some(o @ Json::Object(_)) => match o.get("type").and_then(Json::as_str) {
            Some("function") => {
                let name = o
                    .get("name")
                    .or_else(|| o.get("function").and_then(|f| f.get("name")))
                    .and_then(Json::as_str)
                    .ok_or_else(bad)?;
                Ok(Some(json!({"type": "function", "function": {"name": name}})))
            }
            // The allowed list narrows nothing the router can enforce; its mode stands.
            Some("allowed_tools") => Ok(o.get("mode").filter(|m| m.is_string()).map(Json::to_value)),
            Some(other) => Err(InvalidRequest::new(
                format!("`tool_choice` forces the `{other}` tool, which the free router does not serve"),
                "tool_choice",
                "unsupported_tool",
            )),
            None => Err(bad()),
        },
        Some(_) => Err(bad()),
    }
}

/// Chat's `response_format` for a `text.format`, borrowed from the request.
enum ResponseFormat<'j, 'a> {
    JsonObject,
    /// The schema as the client wrote it, its properties in their order.
    JsonSchema {
        name: &'j str,
        schema: &'j Json<'a>,
        strict: Option<&'j Json<'a>>,
        description: Option<&'j Json<'a>>,
    },
}

impl ResponseFormat<'_, '_> {
    fn write(&self, out: &mut Vec<u8>) {
        let (name, schema, strict, description) = match self {
            ResponseFormat::JsonObject => return out.extend_from_slice(br#"{"type":"json_object"}"#),
            ResponseFormat::JsonSchema { name, schema, strict, description } => (name, schema, strict, description),
        };
        let mut format = Seq::object(out);
        string(format.key("type"), "json_schema");
        let mut s = Seq::object(format.key("json_schema"));
        string(s.key("name"), name);
        schema.write_json(s.key("schema"));
        if let Some(v) = strict {
            v.write_json(s.key("strict"));
        }
        if let Some(v) = description {
            v.write_json(s.key("description"));
        }
        s.end();
        format.end();
    }
}

/// `text.format` as chat's `response_format` (`text` needs none).
fn response_format<'j, 'a>(text: Option<&'j Json<'a>>) -> Result<Option<ResponseFormat<'j, 'a>>, InvalidRequest> {
    let Some(format) = text.and_then(|t| t.get("format")).filter(|f| !f.is_null()) else { return Ok(None) };
    match format.get("type").and_then(Json::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(ResponseFormat::JsonObject)),
        Some("json_schema") => {
            let name = format.get("name").and_then(Json::as_str).unwrap_or("response");
            let Some(schema) = format.get("schema").filter(|s| s.is_object()) else {
                return Err(invalid("`text.format.schema` must be a JSON schema object", "text.format.schema"));
            };
            let given = |key: &str| format.get(key).filter(|v| !v.is_null());
            Ok(Some(ResponseFormat::JsonSchema {
                name,
                schema,
                strict: given("strict"),
                description: given("description"),
            }))
        }
        _ => Err(invalid("`text.format.type` must be `text`, `json_object` or `json_schema`", "text.format")),
    }
}

/// The members the response object repeats, with the defaults OpenAI shows, written as
/// JSON members without their braces (each snapshot of a stream copies them).
fn echo<'j>(req: &Top<'j, '_>, tools: &[FunctionTool<'_, '_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    // Each key is written with its quotes, colon and the comma before it, in one copy.
    let mut member = |key: &[u8], value: Option<&Json<'_>>, default: &[u8]| {
        out.extend_from_slice(key);
        match value {
            Some(v) => v.write_json(&mut out),
            None => out.extend_from_slice(default),
        }
    };
    let given = |v: Option<&'j Json<'_>>| v.filter(|v| !v.is_null());
    let reasoning = req.reasoning;
    let format = req.text.and_then(|t| t.get("format")).filter(|f| !f.is_null());
    member(b"\"instructions\":", req.instructions, b"null");
    member(b",\"max_output_tokens\":", req.max_output_tokens, b"null");
    member(b",\"metadata\":", given(req.metadata), b"{}");
    member(b",\"parallel_tool_calls\":", given(req.parallel_tool_calls), b"true");
    member(b",\"previous_response_id\":", None, b"null");
    member(b",\"prompt_cache_key\":", req.prompt_cache_key, b"null");
    // `reasoning` is written whole below; its two members here.
    member(b",\"safety_identifier\":", req.safety_identifier, b"null");
    member(b",\"store\":", None, b"false");
    member(b",\"temperature\":", given(req.temperature), b"1.0");
    member(b",\"tool_choice\":", given(req.tool_choice), b"\"auto\"");
    member(b",\"top_p\":", given(req.top_p), b"1.0");
    member(b",\"truncation\":", given(req.truncation), b"\"disabled\"");
    member(b",\"user\":", req.user, b"null");
    out.extend_from_slice(b",\"reasoning\":{\"effort\":");
    let part = |out: &mut Vec<u8>, v: Option<&Json<'_>>| match v {
        Some(v) => v.write_json(out),
        None => out.extend_from_slice(b"null"),
    };
    part(&mut out, reasoning.and_then(|r| r.get("effort")));
    out.extend_from_slice(b",\"summary\":");
    part(&mut out, reasoning.and_then(|r| r.get("summary")));
    out.extend_from_slice(b"},\"text\":{\"format\":");
    match format {
        Some(f) => part(&mut out, Some(f)),
        None => out.extend_from_slice(b"{\"type\":\"text\"}"),
    }
    out.extend_from_slice(b"},\"tools\":");
    let mut list = Seq::array(&mut out);
    for tool in tools {
        tool.write_flat(list.item());
    }
    list.end();
    out
}

impl Translated {
    /// [`Translated::echo`] as an object.
    pub fn echo_object(&self) -> Value {
        let mut object = Vec::with_capacity(self.echo.len() + 2);
        object.push(b'{');
        object.extend_from_slice(&self.echo);
        object.push(b'}');
        serde_json::from_slice(&object).unwrap_or_default()
    }
}

mod top;
