//! Prices as the catalog serves them, and the exact test of zero: a decimal read digit
//! by digit, never through a float.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Prices as the catalog serves them: USD per unit, as decimal strings (`"0"`,
/// `"0.0000003"`), plus the odd structured entry (`overrides` lists). Kept verbatim so
/// that nothing is lost in a round trip and zero is judged on the exact text.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pricing(pub BTreeMap<String, serde_json::Value>);

impl Pricing {
    /// Keys whose price is not exactly zero (or cannot be read as a number).
    pub fn priced_keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter(|(_, v)| !price_is_zero(v)).map(|(k, _)| k.as_str())
    }

    /// Every listed price is exactly zero, and there is at least one: an entry with no
    /// prices is unknown, and unknown is not free.
    pub fn all_zero(&self) -> bool {
        !self.0.is_empty() && self.priced_keys().next().is_none()
    }
}

/// Whether a price value is exactly zero. Anything that is not a readable number is
/// treated as non-zero: when unsure, a model is not free.
fn price_is_zero(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => decimal_is_zero(s) == Some(true),
        Value::Number(n) => decimal_is_zero(&n.to_string()) == Some(true),
        // Structured prices (e.g. `overrides: [{min_prompt_tokens, prompt, completion}]`):
        // every price inside must be zero; thresholds are not prices.
        Value::Array(items) => items.iter().all(price_is_zero),
        Value::Object(map) => {
            map.iter().filter(|(k, _)| !(k.starts_with("min_") || k.starts_with("max_"))).all(|(_, v)| price_is_zero(v))
        }
        Value::Null | Value::Bool(_) => false,
    }
}

/// Reads a decimal literal exactly: `Some(true)` when every digit of its mantissa is
/// zero, `Some(false)` for any other number, `None` when it is not a decimal literal.
/// No float conversion, so `"0.0000000000000000001"` is never mistaken for zero.
pub fn decimal_is_zero(s: &str) -> Option<bool> {
    let s = s.trim();
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    if let Some(e) = exponent {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    let mut digits = 0;
    let mut dots = 0;
    let mut zero = true;
    for b in mantissa.bytes() {
        match b {
            b'0' => digits += 1,
            b'1'..=b'9' => {
                digits += 1;
                zero = false;
            }
            b'.' => dots += 1,
            _ => return None,
        }
    }
    (digits > 0 && dots <= 1).then_some(zero)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(price: serde_json::Value, zero: bool) {
        assert_eq!(price_is_zero(&price), zero, "{price}");
    }

    #[test]
    fn zero_is_never_tiny() {
        check(json!("0"), true);
        check(json!("0.0"), true);
        check(json!("-0"), true);
        check(json!("0e-5"), true);
        check(json!(0), true);
        check(json!(0.0), true);
        check(json!("0.0000003"), false);
        check(json!("0.0000000000000000000000001"), false);
        check(json!("1e-30"), false);
        check(json!("-1"), false);
        check(json!(""), false);
        check(json!("free"), false);
        check(json!("0.0.0"), false);
        check(json!(null), false);
        check(json!([]), true);
        check(json!([{"min_prompt_tokens": 128000, "prompt": "0", "completion": "0"}]), true);
        check(json!([{"min_prompt_tokens": 128000, "prompt": "0.000001", "completion": "0"}]), false);
    }
}
