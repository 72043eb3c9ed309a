//! How one event is framed and numbered: its head, its `sequence_number`, an item's
//! place (`item_id`, `output_index`), and the small writers the events share.

use crate::json_out::number;
use crate::responses::output::{ItemId, Status};

/// Where an item is, `"item_id":…,"output_index":…`; then, while the item is open, its
/// parts' texts; then, once its `response.output_item.done` event wrote it, the item:
/// the final snapshot copies those bytes instead of writing the item a second time (one
/// buffer for all three, one allocation).
#[derive(Debug)]
pub(super) struct Place {
    pub(super) bytes: Vec<u8>,
    /// Where the item's id ends (it begins after [`ITEM_ID_KEY`]).
    pub(super) id_end: usize,
    /// Where the place ends and the item's bytes begin.
    pub(super) head: usize,
    pub(super) done: bool,
}

/// The key a place begins with, its item's id after it.
pub(super) const ITEM_ID_KEY: &[u8] = b"\"item_id\":";

impl Place {
    /// The item's id, as the JSON string the place holds.
    pub(super) fn id(&self) -> ItemId<'_> {
        ItemId::Written(self.bytes.get(ITEM_ID_KEY.len()..self.id_end).unwrap_or_default())
    }

    pub(super) fn head(&self) -> &[u8] {
        self.bytes.get(..self.head).unwrap_or_default()
    }

    /// The item's bytes, once its done event has written them.
    pub(super) fn done(&self) -> Option<&[u8]> {
        self.done.then(|| self.bytes.get(self.head..)).flatten()
    }
}

/// The next sequence number.
pub(super) fn next(seq: &mut u64) -> u64 {
    let n = *seq;
    *seq += 1;
    n
}

/// An event about the item at `place`: its place, a part's `"content_index"`, then what
/// `rest` writes (each member after a comma).
pub(super) fn event_at(
    out: &mut Vec<u8>,
    seq: &mut u64,
    kind: &[u8],
    place: &[u8],
    content_index: Option<usize>,
    rest: impl FnOnce(&mut Vec<u8>),
) {
    write_event(out, kind, next(seq), |o| {
        o.push(b',');
        o.extend_from_slice(place);
        if let Some(c) = content_index {
            o.extend_from_slice(b",\"content_index\":");
            small_number(o, c as u64);
        }
        rest(o);
    });
}

/// An event's head, `event: <kind>` to `"sequence_number":`, as one literal.
macro_rules! head {
    ($kind:literal) => {
        concat!("event: ", $kind, "\ndata: {\"type\":\"", $kind, "\",\"sequence_number\":").as_bytes()
    };
}
pub(super) use head;

/// The final event's head for `status` ([`Status::final_event`] names it).
pub(super) fn final_head(status: &Status) -> &'static [u8] {
    match status.final_event() {
        "response.incomplete" => head!("response.incomplete"),
        "response.failed" => head!("response.failed"),
        _ => head!("response.completed"),
    }
}

/// An event: its `head` (from [`head!`]), `sequence_number`, then what `rest` writes.
pub(super) fn write_event(out: &mut Vec<u8>, head: &[u8], seq: u64, rest: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(head);
    small_number(out, seq);
    rest(out);
    out.extend_from_slice(b"}\n\n");
}

/// The bytes reserved for the events of one upstream chunk, beside the echo.
pub(super) const EVENTS_CAPACITY: usize = 2048;

/// `n` as a JSON number: a sequence number or an index, nearly always below 100, written
/// without the general writer's buffer.
#[inline]
pub(super) fn small_number(out: &mut Vec<u8>, n: u64) {
    match n {
        0..10 => out.push(b'0' + n as u8),
        10..100 => out.extend_from_slice(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8]),
        _ => number(out, n),
    }
}

/// Room for an item's place (its id, `msg_` and the response id's tail, and its index),
/// its parts' texts as they come, and the usual item written whole when it is done.
pub(super) const PLACE_CAPACITY: usize = 512;

#[cfg(test)]
mod tests {
    #[test]
    fn small_numbers_are_written_as_the_general_writer_writes_them() {
        for n in [0, 9, 10, 42, 99, 100, 12_345, u64::MAX] {
            let (mut small, mut general) = (Vec::new(), Vec::new());
            super::small_number(&mut small, n);
            crate::json_out::number(&mut general, n);
            assert_eq!(small, general, "{n}");
        }
    }
}
