//! The forwarded body is the client's, with `model` replaced and the router-only members
//! left out, whatever the layout.

use crate::catalogs::*;
use crate::config;
use crate::requests::*;
use proptest::prelude::*;
use proptest::sample::select;
use router_core::{ChatRequest, ModelId};
use serde_json::{Value, json};
use std::collections::BTreeMap;

proptest! {
    #![proptest_config(config())]

    /// The forwarded body is the client's body with `model` replaced and the router-only
    /// fields left out, however the client formatted it; the formatting does not change
    /// what the request needs (spacing only adds to the prompt estimate).
    #[test]
    fn the_forwarded_body_is_the_request_with_the_model_replaced(
        models in catalog(5),
        req in request(),
        pretty in any::<bool>(),
    ) {
        let (parsed, _) = req.resolve(&models);
        let mut body = req.body.clone();
        body["model"] = json!("openrouter/free");
        let text = if pretty { serde_json::to_vec_pretty(&body) } else { serde_json::to_vec(&body) }.expect("json");
        let chat = ChatRequest::from_slice(&text).expect("valid");
        let forwarded: Value = serde_json::from_slice(&chat.body_for_upstream("x/y:free", false, None)).expect("json");
        let mut expected = body.clone();
        let object = expected.as_object_mut().expect("an object");
        object.remove("route");
        object.insert("model".into(), json!("x/y:free"));
        prop_assert_eq!(forwarded, expected);
        // Tool definitions count as sent, so spacing may only add to the estimate.
        let (got, compact) = (chat.requirements(), parsed.requirements());
        prop_assert_eq!((got.caps, got.max_output_tokens), (compact.caps, compact.max_output_tokens));
        prop_assert!(got.prompt_tokens >= compact.prompt_tokens);
        if !pretty {
            prop_assert_eq!(got.prompt_tokens, compact.prompt_tokens);
        }
        prop_assert_eq!(chat.is_stream(), body.get("stream") == Some(&json!(true)));
    }
}

/// Any JSON value, with awkward strings.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::from),
        Just(json!("quote \" backslash \\ newline \n tab \t, comma } brace")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z\",:{} ]{0,4}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A key as JSON text: plain, or with its first character `\u`-escaped.
fn key_text(key: &str, escaped: bool) -> String {
    match key.chars().next() {
        Some(c) if escaped && (c as u32) < 0x1_0000 => {
            let rest = serde_json::to_string(&key[c.len_utf8()..]).expect("json");
            format!("\"\\u{:04x}{}", c as u32, &rest[1..])
        }
        _ => serde_json::to_string(key).expect("json"),
    }
}

/// One member of a hand-written body: key, whether to escape it, value.
fn member() -> impl Strategy<Value = (String, bool, Value)> {
    let key = select(vec![
        "temperature",
        "model",
        "models",
        "route",
        "stream",
        "x",
        "a\"b",
        "tab\tkey",
        "ü",
        "😀",
        "",
        "messages",
    ]);
    (key, any::<bool>(), json_value()).prop_map(|(k, escaped, v)| {
        let v = match k {
            "model" => json!("openrouter/free"),
            "models" => json!(["free"]),
            "stream" => json!(false),
            "messages" => json!([{"role": "user", "content": [{"type": "text", "text": "hi"}], "extra": v}]),
            _ => v,
        };
        (k.to_owned(), escaped, v)
    })
}

proptest! {
    #![proptest_config(config())]

    /// Bodies written by hand, with any spacing, escaped and repeated keys: the forwarded
    /// body holds the last value of every key but `model` and the router-only fields,
    /// each value byte for byte as the client wrote it.
    #[test]
    fn members_are_found_and_forwarded_whatever_the_layout(
        members in prop::collection::vec((member(), any::<bool>()), 0..8),
        messages_at in any::<prop::sample::Index>(),
        spaces in prop::collection::vec(select(vec!["", " ", "\n", "\t", " \r\n  "]), 64),
    ) {
        let mut members: Vec<((String, bool, Value), bool)> = members;
        let first = (("messages".to_owned(), false, json!([{"role": "user", "content": "hello"}])), false);
        members.insert(messages_at.index(members.len() + 1), first);
        let mut ws = spaces.iter().cycle();
        let mut text = format!("{}{{", ws.next().expect("cycle"));
        let mut expected = serde_json::Map::new();
        let mut raw_values: BTreeMap<String, String> = BTreeMap::new();
        for (i, ((key, escaped, value), pretty)) in members.iter().enumerate() {
            let value_text = if *pretty { serde_json::to_string_pretty(value) } else { serde_json::to_string(value) }
                .expect("json");
            if i > 0 {
                text.push(',');
            }
            let w: Vec<&str> = (0..4).map(|_| *ws.next().expect("cycle")).collect();
            text.push_str(&format!("{}{}{}:{}{}{}", w[0], key_text(key, *escaped), w[1], w[2], value_text, w[3]));
            expected.insert(key.clone(), serde_json::from_str(&value_text).expect("json"));
            raw_values.insert(key.clone(), value_text);
        }
        text.push_str(&format!("}}{}", ws.next().expect("cycle")));
        let req = ChatRequest::from_slice(text.as_bytes()).expect("a valid request");
        let out = req.body_for_upstream("x/y:free", false, None);
        let forwarded: Value = serde_json::from_slice(&out).expect("forwarded json");
        for k in ["models", "route"] {
            expected.remove(k);
            raw_values.remove(k);
        }
        expected.insert("model".into(), json!("x/y:free"));
        prop_assert_eq!(forwarded, Value::Object(expected), "{}", text);
        let out = String::from_utf8(out).expect("utf-8");
        for (key, raw) in raw_values.iter().filter(|(k, _)| k.as_str() != "model") {
            prop_assert!(out.contains(raw.as_str()), "{:?}'s value is not forwarded verbatim: {}", key, out);
        }
    }
}

#[test]
fn forwarding_keeps_the_clients_bytes_and_order() {
    // Spacing inside values is kept, the last of duplicate keys wins (as in a JSON map),
    // an escaped key is re-encoded, `model` comes first, router-only fields are dropped.
    let body = br#"{ "temperature" : 0.5, "model":"openrouter/free", "messages": [ {"role":"user", "content":"hi"} ],
        "models":["a:free"], "route":"fallback", "z\u0041":1, "temperature": 0.7 , "\u006dodel": "free" }"#;
    let req = ChatRequest::from_slice(body).expect("valid");
    // The escaped `model` key is the last `model`: `free`, the router alias.
    assert_eq!(req.targets(), [router_core::Target::AnyFree, router_core::Target::Model(ModelId::new("a:free"))]);
    let out = String::from_utf8(req.body_for_upstream("m:free", false, None)).expect("utf-8");
    assert_eq!(out, r#"{"model":"m:free","messages":[ {"role":"user", "content":"hi"} ],"zA":1,"temperature":0.7}"#);
}
