//! Where a whole chat answer's members are, recorded by the one reading that judges it
//! ([`super::Answer::read`]) as byte ranges of the body, so that a dialect translating
//! the answer (`router-dialects`) reads those members in place instead of walking the
//! whole body a second time. No copies: ranges only.

use super::json::Scanner;
use std::ops::Range;

/// One member's value as a byte range (`u32`: an answer is far below 4 GiB); empty when
/// the member was absent (a JSON value is never empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The range `r`; absent when it does not fit in `u32`.
    #[inline]
    pub(super) fn of(r: Range<usize>) -> Span {
        match (u32::try_from(r.start), u32::try_from(r.end)) {
            (Ok(start), Ok(end)) => Span { start, end },
            _ => Span::default(),
        }
    }

    /// The value's bytes in `json`; `None` when absent or outside `json`.
    pub fn get<'a>(&self, json: &'a [u8]) -> Option<&'a [u8]> {
        if self.end <= self.start {
            return None;
        }
        json.get(self.start as usize..self.end as usize)
    }

    /// Moves the span by `by` bytes when it starts at or after `from` (a splice there).
    fn shift(&mut self, from: usize, by: isize) {
        if self.end > self.start && self.start as usize >= from {
            let moved = |p: u32| u32::try_from(p as isize + by).unwrap_or(0);
            (self.start, self.end) = (moved(self.start), moved(self.end));
        }
    }
}

/// The members of a whole chat answer a dialect reads: the top level's, the first
/// choice's, and that choice's `message`'s. A repeated member: the last one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnswerSpans {
    /// The top level's `id`.
    pub id: Span,
    /// The top level's `model`, as the router wrote it.
    pub model: Span,
    /// The top level's `created`.
    pub created: Span,
    /// The top level's `usage`.
    pub usage: Span,
    /// The first choice's `finish_reason` (a string; absent when `null`).
    pub finish_reason: Span,
    /// The first choice's `stop_reason`.
    pub stop_reason: Span,
    /// The first choice's `message.content`.
    pub content: Span,
    /// The first choice's `message.reasoning`.
    pub reasoning: Span,
    /// The first choice's `message.reasoning_content`.
    pub reasoning_content: Span,
    /// The first choice's `message.refusal`.
    pub refusal: Span,
    /// The first choice's `message.tool_calls`.
    pub tool_calls: Span,
    /// `usage.prompt_tokens`.
    pub prompt_tokens: Span,
    /// `usage.completion_tokens`.
    pub completion_tokens: Span,
    /// `usage.total_tokens`.
    pub total_tokens: Span,
    /// `usage.prompt_tokens_details.cached_tokens`.
    pub cached_tokens: Span,
    /// `usage.completion_tokens_details.reasoning_tokens`.
    pub reasoning_tokens: Span,
}

impl AnswerSpans {
    /// Forgets the first choice's message (a later `message` member replaces it).
    pub(super) fn forget_message(&mut self) {
        let absent = Span::default();
        (self.content, self.reasoning, self.reasoning_content, self.refusal, self.tool_calls) =
            (absent, absent, absent, absent, absent);
    }

    /// The spans after the bytes at `from` moved by `by` (a member's value replaced).
    pub(super) fn shifted(mut self, from: usize, by: isize) -> AnswerSpans {
        for span in [
            &mut self.id,
            &mut self.model,
            &mut self.created,
            &mut self.usage,
            &mut self.finish_reason,
            &mut self.stop_reason,
            &mut self.content,
            &mut self.reasoning,
            &mut self.reasoning_content,
            &mut self.refusal,
            &mut self.tool_calls,
            &mut self.prompt_tokens,
            &mut self.completion_tokens,
            &mut self.total_tokens,
            &mut self.cached_tokens,
            &mut self.reasoning_tokens,
        ] {
            span.shift(from, by);
        }
        self
    }
}

/// Where a message's member goes, for the first choice's `message` (`None` otherwise).
#[inline]
pub(super) fn message_member<'s>(spans: Option<&'s mut AnswerSpans>, key: &[u8]) -> Option<&'s mut Span> {
    let spans = spans?;
    Some(match key {
        b"content" => &mut spans.content,
        b"reasoning" => &mut spans.reasoning,
        b"reasoning_content" => &mut spans.reasoning_content,
        b"refusal" => &mut spans.refusal,
        b"tool_calls" => &mut spans.tool_calls,
        _ => return None,
    })
}

/// Walks the top level's `usage` (checking it is JSON), recording where its counts are:
/// a dialect reads them from there without walking it again.
pub(super) fn usage(s: &mut Scanner<'_>, spans: &mut AnswerSpans) -> Option<()> {
    let start = s.pos();
    let absent = Span::default();
    (spans.prompt_tokens, spans.completion_tokens, spans.total_tokens, spans.cached_tokens, spans.reasoning_tokens) =
        (absent, absent, absent, absent, absent);
    if s.peek() != Some(b'{') {
        s.value()?;
    } else {
        s.members(|s, key| {
            let at = s.pos();
            let (inner, wanted): (&mut Span, &[u8]) = match key {
                b"prompt_tokens_details" => (&mut spans.cached_tokens, b"cached_tokens"),
                b"completion_tokens_details" => (&mut spans.reasoning_tokens, b"reasoning_tokens"),
                _ => {
                    s.value()?;
                    let span = match key {
                        b"prompt_tokens" => &mut spans.prompt_tokens,
                        b"completion_tokens" => &mut spans.completion_tokens,
                        b"total_tokens" => &mut spans.total_tokens,
                        _ => return Some(()),
                    };
                    *span = Span::of(at..s.pos());
                    return Some(());
                }
            };
            // A repeated member replaces the one before, as in a tree.
            *inner = absent;
            if s.peek() != Some(b'{') {
                return s.value();
            }
            s.members(|s, key| {
                let at = s.pos();
                s.value()?;
                if key == wanted {
                    *inner = Span::of(at..s.pos());
                }
                Some(())
            })
        })?;
    }
    spans.usage = Span::of(start..s.pos());
    Some(())
}
