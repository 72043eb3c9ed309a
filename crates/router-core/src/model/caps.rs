//! What a request can need from a model, one capability per catalog signal, and a set
//! of them as bits so that "what is missing" is one AND per model.

use std::fmt;

/// One thing a request can need from a model. Each maps to a catalog signal
/// (an input or output modality, or a supported parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Capability {
    /// Produces text (`output_modalities` has `text`).
    TextOutput,
    /// Reads images in messages (`input_modalities` has `image`).
    ImageInput,
    /// Reads files such as PDFs in messages (`input_modalities` has `file`).
    FileInput,
    /// Reads audio in messages (`input_modalities` has `audio`).
    AudioInput,
    /// Reads video in messages (`input_modalities` has `video`).
    VideoInput,
    /// Produces images (`output_modalities` has `image`).
    ImageOutput,
    /// Produces audio (`output_modalities` has `audio`).
    AudioOutput,
    /// Takes `tools` (function calling).
    Tools,
    /// Takes `tool_choice`.
    ToolChoice,
    /// `response_format: {type: json_schema}`.
    StructuredOutputs,
    /// `response_format: {type: json_object}`: `response_format` or `structured_outputs`.
    JsonMode,
    /// Takes `reasoning` or `include_reasoning`.
    Reasoning,
    /// Takes `logprobs`.
    Logprobs,
    /// Takes `top_logprobs`.
    TopLogprobs,
    /// Produces embedding vectors (`output_modalities` has `embeddings`): served only
    /// on `/embeddings`, never to a chat request (which needs [`Capability::TextOutput`]).
    EmbeddingsOutput,
}

impl Capability {
    /// Every capability, in declaration (and bit) order; the order explanations list them in.
    pub const ALL: [Capability; 15] = [
        Capability::TextOutput,
        Capability::ImageInput,
        Capability::FileInput,
        Capability::AudioInput,
        Capability::VideoInput,
        Capability::ImageOutput,
        Capability::AudioOutput,
        Capability::Tools,
        Capability::ToolChoice,
        Capability::StructuredOutputs,
        Capability::JsonMode,
        Capability::Reasoning,
        Capability::Logprobs,
        Capability::TopLogprobs,
        Capability::EmbeddingsOutput,
    ];

    /// The short label used in explanations and error messages.
    pub fn label(self) -> &'static str {
        match self {
            Capability::TextOutput => "text output",
            Capability::ImageInput => "image input",
            Capability::FileInput => "file input",
            Capability::AudioInput => "audio input",
            Capability::VideoInput => "video input",
            Capability::ImageOutput => "image output",
            Capability::AudioOutput => "audio output",
            Capability::Tools => "tools",
            Capability::ToolChoice => "tool_choice",
            Capability::StructuredOutputs => "structured outputs",
            Capability::JsonMode => "json mode",
            Capability::Reasoning => "reasoning",
            Capability::Logprobs => "logprobs",
            Capability::TopLogprobs => "top_logprobs",
            Capability::EmbeddingsOutput => "embeddings output",
        }
    }

    const fn bit(self) -> u16 {
        1 << self as u8
    }
}

/// A set of [`Capability`] as a bit set, so that "what is missing" is one AND per model.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CapSet(u16);

impl CapSet {
    /// The set with no members.
    pub const EMPTY: CapSet = CapSet(0);

    /// This set plus `c`; usable in `const` items.
    pub const fn with(self, c: Capability) -> CapSet {
        CapSet(self.0 | c.bit())
    }

    /// Adds `c` to the set.
    pub fn insert(&mut self, c: Capability) {
        self.0 |= c.bit();
    }

    /// Whether `c` is a member.
    pub const fn contains(self, c: Capability) -> bool {
        self.0 & c.bit() != 0
    }

    /// Members of either set.
    #[must_use]
    pub const fn union(self, other: CapSet) -> CapSet {
        CapSet(self.0 | other.0)
    }

    /// Members of `self` that `other` lacks.
    pub const fn missing_from(self, other: CapSet) -> CapSet {
        CapSet(self.0 & !other.0)
    }

    /// Whether the set has no members.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members, in [`Capability::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL.into_iter().filter(move |c| self.contains(*c))
    }

    /// Labels joined with ` + `, e.g. `tools + image input`.
    pub fn describe(self) -> String {
        self.iter().map(Capability::label).collect::<Vec<_>>().join(" + ")
    }
}

impl fmt::Debug for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<Capability> for CapSet {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        let mut s = CapSet::EMPTY;
        for c in iter {
            s.insert(c);
        }
        s
    }
}
