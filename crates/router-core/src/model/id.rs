//! A model's id: shared text, cheap to clone, ordered and hashed as its text.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// A model id as OpenRouter spells it, e.g. `meta-llama/llama-3.3-70b-instruct:free`.
/// Cheap to clone: ids are shared between the catalog, decisions and the health state.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ModelId(Arc<str>);

impl ModelId {
    /// An id from its text, taken as given (no check of its form).
    pub fn new(id: &str) -> Self {
        ModelId(Arc::from(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A free variant by name (`:free` suffix). Only one of the signals of free-ness.
    pub fn is_free_variant(&self) -> bool {
        self.0.ends_with(":free")
    }
}

impl fmt::Debug for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for ModelId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ModelId {
    fn from(s: &str) -> Self {
        ModelId::new(s)
    }
}
