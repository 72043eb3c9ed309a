//! A model in OpenRouter's `/models` entry shape, built from what the router knows.

use super::info::ModelInfo;

/// A model in OpenRouter's `/models` entry shape (every member of its `Model` schema),
/// built from what the router knows, for a model without its upstream entry (the
/// embedded catalog, a declared provider's models). It is the shape of the router's own
/// `/models`, so it lives with the model rather than in an adapter. Unknown values are `null` where the schema allows it; an unknown
/// `created` (a required integer) is `0`.
pub fn to_openrouter_json(m: &ModelInfo) -> serde_json::Value {
    let modality = (!m.input_modalities.is_empty() || !m.output_modalities.is_empty())
        .then(|| format!("{}->{}", m.input_modalities.join("+"), m.output_modalities.join("+")));
    serde_json::json!({
        "id": m.id.as_str(),
        "canonical_slug": m.id.as_str(),
        "hugging_face_id": null,
        "name": m.name,
        "created": m.created.unwrap_or(0),
        "description": "",
        "context_length": m.context_length,
        "architecture": {
            "modality": modality,
            "input_modalities": m.input_modalities,
            "output_modalities": m.output_modalities,
            "tokenizer": m.tokenizer,
            "instruct_type": null,
        },
        "pricing": m.pricing,
        "top_provider": {
            "context_length": m.context_length,
            "max_completion_tokens": m.max_completion_tokens,
            "is_moderated": false,
        },
        "per_request_limits": null,
        "supported_parameters": m.supported_parameters,
        "default_parameters": {},
        "supported_voices": null,
        "knowledge_cutoff": null,
        "expiration_date": m.expiration_date,
        "links": {"details": format!("/api/v1/models/{}/endpoints", m.id)},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_built_entry_has_openrouter_s_members() {
        let mut m = ModelInfo::new("acme/bare");
        assert_eq!(to_openrouter_json(&m)["architecture"]["modality"], serde_json::Value::Null);
        m.input_modalities = vec!["text".into(), "image".into()];
        m.output_modalities = vec!["text".into()];
        m.max_completion_tokens = Some(4096);
        let v = to_openrouter_json(&m);
        assert_eq!(v["architecture"]["modality"], json!("text+image->text"));
        assert_eq!(v["top_provider"]["max_completion_tokens"], json!(4096));
        assert_eq!(v["created"], json!(0), "a required integer, 0 when unknown");
        assert_eq!(v["links"]["details"], json!("/api/v1/models/acme/bare/endpoints"));
    }
}
