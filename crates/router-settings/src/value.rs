//! The value types settings are made of, each readable from the file (serde), from an
//! environment variable or a flag (text), and shown back by `--check-config`.

use router_core::Secret;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A value that can come from text (a flag or an environment variable) and be shown.
pub trait SettingValue: Sized {
    /// Parses the text of a flag or an environment variable.
    fn parse_text(text: &str) -> Result<Self, String>;
    /// The value as `--check-config` and the README show it; secrets only as "set".
    fn show(&self) -> String;
}

macro_rules! from_str_values {
    ($($t:ty => $what:literal),* $(,)?) => {$(
        impl SettingValue for $t {
            fn parse_text(text: &str) -> Result<Self, String> {
                text.trim().parse().map_err(|_| format!("`{text}` is not {}", $what))
            }
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}

from_str_values!(u32 => "a whole number", u64 => "a whole number", usize => "a whole number", SocketAddr => "an IP:PORT address");

impl SettingValue for bool {
    fn parse_text(text: &str) -> Result<Self, String> {
        match text.trim() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(format!("`{text}` is not true or false")),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for String {
    fn parse_text(text: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }
    fn show(&self) -> String {
        self.clone()
    }
}

impl SettingValue for PathBuf {
    fn parse_text(text: &str) -> Result<Self, String> {
        Ok(PathBuf::from(text))
    }
    fn show(&self) -> String {
        self.display().to_string()
    }
}

impl SettingValue for Secret {
    fn parse_text(text: &str) -> Result<Self, String> {
        Ok(Secret::new(text.trim()))
    }
    fn show(&self) -> String {
        "set".to_owned()
    }
}

/// Client keys: one comma-separated value in the environment or a flag, a list in the file.
impl SettingValue for Vec<Secret> {
    fn parse_text(text: &str) -> Result<Self, String> {
        Ok(text.split(',').map(str::trim).filter(|k| !k.is_empty()).map(Secret::new).collect())
    }
    fn show(&self) -> String {
        if self.is_empty() { "none".to_owned() } else { format!("{} client key(s)", self.len()) }
    }
}

/// A list of names (host names): comma-separated in a flag or variable, a list in the file.
impl SettingValue for Vec<String> {
    fn parse_text(text: &str) -> Result<Self, String> {
        Ok(text.split(',').map(str::trim).filter(|h| !h.is_empty()).map(str::to_owned).collect())
    }
    fn show(&self) -> String {
        if self.is_empty() { "none".to_owned() } else { self.join(",") }
    }
}

/// An optional value: empty text is "none".
impl<T: SettingValue> SettingValue for Option<T> {
    fn parse_text(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() { Ok(None) } else { T::parse_text(text).map(Some) }
    }
    fn show(&self) -> String {
        self.as_ref().map_or_else(|| "none".to_owned(), T::show)
    }
}

/// A duration setting, written as a whole number of seconds (at least one). Code may
/// set a shorter one (a test's grace period) with [`Seconds::of`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seconds(Duration);

impl Seconds {
    /// `secs` whole seconds.
    pub const fn new(secs: u64) -> Seconds {
        Seconds(Duration::from_secs(secs))
    }

    /// Any duration, e.g. a default constant.
    pub const fn of(d: Duration) -> Seconds {
        Seconds(d)
    }

    pub fn get(self) -> Duration {
        self.0
    }
}

fn seconds(n: u64) -> Result<Seconds, String> {
    if n == 0 { Err("must be at least 1 second".to_owned()) } else { Ok(Seconds::new(n)) }
}

impl SettingValue for Seconds {
    fn parse_text(text: &str) -> Result<Self, String> {
        seconds(u64::parse_text(text)?)
    }
    fn show(&self) -> String {
        let d = self.0;
        if d.subsec_millis() == 0 { d.as_secs().to_string() } else { format!("{}", d.as_secs_f64()) }
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        seconds(u64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A duration setting in whole milliseconds; `0` is allowed (it turns the behaviour off).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Millis(Duration);

impl Millis {
    /// Any duration, e.g. a default constant.
    pub const fn of(d: Duration) -> Millis {
        Millis(d)
    }

    pub fn get(self) -> Duration {
        self.0
    }
}

impl SettingValue for Millis {
    fn parse_text(text: &str) -> Result<Self, String> {
        u64::parse_text(text).map(|ms| Millis(Duration::from_millis(ms)))
    }
    fn show(&self) -> String {
        self.0.as_millis().to_string()
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u64::deserialize(d).map(|ms| Millis(Duration::from_millis(ms)))
    }
}

/// Per-model weights: `id=weight,...` as text, a table of `"id" = weight` in the file.
/// Every weight is a finite number above zero.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Weights(pub BTreeMap<String, f64>);

fn weight(id: &str, w: f64) -> Result<f64, String> {
    if w.is_finite() && w > 0.0 { Ok(w) } else { Err(format!("the weight of `{id}` must be a number above 0")) }
}

impl SettingValue for Weights {
    fn parse_text(text: &str) -> Result<Self, String> {
        let mut out = BTreeMap::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (id, w) = item.rsplit_once('=').ok_or_else(|| format!("`{item}` is not `id=weight`"))?;
            let w: f64 = w.trim().parse().map_err(|_| format!("`{w}` is not a number"))?;
            out.insert(id.trim().to_owned(), weight(id, w)?);
        }
        Ok(Weights(out))
    }
    fn show(&self) -> String {
        if self.0.is_empty() {
            return "none".to_owned();
        }
        self.0.iter().map(|(id, w)| format!("{id}={w}")).collect::<Vec<_>>().join(",")
    }
}

impl<'de> Deserialize<'de> for Weights {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, f64>::deserialize(d)?;
        for (id, w) in &map {
            weight(id, *w).map_err(serde::de::Error::custom)?;
        }
        Ok(Weights(map))
    }
}

/// A count limit where `0` means no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit(Option<u32>);

impl Limit {
    pub const fn of(n: u32) -> Limit {
        Limit(if n == 0 { None } else { Some(n) })
    }

    /// `None` is no limit.
    pub fn get(self) -> Option<u32> {
        self.0
    }
}

impl SettingValue for Limit {
    fn parse_text(text: &str) -> Result<Self, String> {
        u32::parse_text(text).map(Limit::of)
    }
    fn show(&self) -> String {
        self.0.map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u32::deserialize(d).map(Limit::of)
    }
}

/// The log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

impl SettingValue for LogFormat {
    fn parse_text(text: &str) -> Result<Self, String> {
        match text.trim() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("`{text}` is not `text` or `json`")),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: SettingValue>(text: &str, expected: &str) {
        let got = match T::parse_text(text) {
            Ok(v) => v.show(),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "{text}");
    }

    #[test]
    fn text_values() {
        check::<u32>("7", "7");
        check::<u32>("seven", "error: `seven` is not a whole number");
        check::<Seconds>("0", "error: must be at least 1 second");
        check::<Limit>("0", "unlimited");
        check::<Option<u64>>("", "none");
        check::<Secret>("sk-or-abc", "set");
        check::<Vec<Secret>>("a, b,,c", "3 client key(s)");
        check::<LogFormat>("xml", "error: `xml` is not `text` or `json`");
        check::<bool>("on", "true");
        check::<Millis>("0", "0");
        check::<Weights>("a/b:free=2, c:free=0.5", "a/b:free=2,c:free=0.5");
        check::<Weights>("a=0", "error: the weight of `a` must be a number above 0");
    }
}
