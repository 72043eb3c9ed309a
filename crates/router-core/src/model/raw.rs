//! One upstream catalog entry kept as served, to pass it on untouched.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One upstream catalog entry as served: compact JSON text, shared, compared by text.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawEntry(Arc<serde_json::value::RawValue>);

impl RawEntry {
    /// The entry's compact JSON text.
    pub fn from_value(entry: &serde_json::Value) -> Option<RawEntry> {
        serde_json::value::to_raw_value(entry).ok().map(|b| RawEntry(Arc::from(b)))
    }

    /// The entry's JSON text as served, whitespace and member order included.
    pub fn from_raw(entry: &serde_json::value::RawValue) -> RawEntry {
        RawEntry(Arc::from(entry.to_owned()))
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The JSON value, for writing it out with other values.
    pub fn as_raw(&self) -> &serde_json::value::RawValue {
        &self.0
    }
}

impl PartialEq for RawEntry {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}
