//! The request's top-level members that the translation reads, found in one pass.

use crate::tree::Json;

/// The request's top-level members the translation reads, found in one pass over its
/// members (a key written twice gives its last, as [`Json::get`] does): a lookup of
/// each by name walked the members about forty times a request.
#[derive(Default)]
pub(super) struct Top<'j, 'a> {
    pub(super) model: Option<&'j Json<'a>>,
    pub(super) input: Option<&'j Json<'a>>,
    pub(super) instructions: Option<&'j Json<'a>>,
    pub(super) stream: Option<&'j Json<'a>>,
    pub(super) store: Option<&'j Json<'a>>,
    pub(super) previous_response_id: Option<&'j Json<'a>>,
    pub(super) conversation: Option<&'j Json<'a>>,
    pub(super) prompt: Option<&'j Json<'a>>,
    pub(super) background: Option<&'j Json<'a>>,
    pub(super) tools: Option<&'j Json<'a>>,
    pub(super) tool_choice: Option<&'j Json<'a>>,
    pub(super) parallel_tool_calls: Option<&'j Json<'a>>,
    pub(super) max_output_tokens: Option<&'j Json<'a>>,
    pub(super) temperature: Option<&'j Json<'a>>,
    pub(super) top_p: Option<&'j Json<'a>>,
    pub(super) text: Option<&'j Json<'a>>,
    pub(super) reasoning: Option<&'j Json<'a>>,
    pub(super) user: Option<&'j Json<'a>>,
    pub(super) prompt_cache_key: Option<&'j Json<'a>>,
    pub(super) safety_identifier: Option<&'j Json<'a>>,
    pub(super) metadata: Option<&'j Json<'a>>,
    pub(super) truncation: Option<&'j Json<'a>>,
}

impl<'j, 'a> Top<'j, 'a> {
    /// The members of `req` (an object; anything else has none).
    pub(super) fn of(req: &'j Json<'a>) -> Self {
        let mut top = Top::default();
        let Json::Object(members) = req else { return top };
        for (key, value) in members {
            let slot = match key.as_ref() {
                "model" => &mut top.model,
                "input" => &mut top.input,
                "instructions" => &mut top.instructions,
                "stream" => &mut top.stream,
                "store" => &mut top.store,
                "previous_response_id" => &mut top.previous_response_id,
                "conversation" => &mut top.conversation,
                "prompt" => &mut top.prompt,
                "background" => &mut top.background,
                "tools" => &mut top.tools,
                "tool_choice" => &mut top.tool_choice,
                "parallel_tool_calls" => &mut top.parallel_tool_calls,
                "max_output_tokens" => &mut top.max_output_tokens,
                "temperature" => &mut top.temperature,
                "top_p" => &mut top.top_p,
                "text" => &mut top.text,
                "reasoning" => &mut top.reasoning,
                "user" => &mut top.user,
                "prompt_cache_key" => &mut top.prompt_cache_key,
                "safety_identifier" => &mut top.safety_identifier,
                "metadata" => &mut top.metadata,
                "truncation" => &mut top.truncation,
                _ => continue,
            };
            *slot = Some(value);
        }
        top
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_member_is_found_and_a_repeated_one_gives_its_last() {
        let req = Json::parse(br#"{"model":"a","input":"hi","x":1,"model":"b","store":false}"#).expect("json");
        let top = Top::of(&req);
        assert_eq!(top.model.and_then(Json::as_str), Some("b"), "the last, as Json::get");
        assert_eq!(top.model, req.get("model"));
        assert_eq!(top.input.and_then(Json::as_str), Some("hi"));
        assert_eq!(top.store, Some(&Json::Bool(false)));
        assert!(top.tools.is_none() && top.user.is_none());
        let not_object = Json::parse(b"[1]").expect("json");
        assert!(Top::of(&not_object).model.is_none());
    }
}
