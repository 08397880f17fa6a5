//! Repeated object shapes in JSON decode: the records of a list usually have the same
//! keys in the same order, and [`Shapes`] remembers, for each nesting depth, the keys
//! of the last object closed there so the next one can reuse them.
//!
//! Two things are reused. A key whose bytes equal the remembered key at the same
//! position is pushed from the remembered Luau string instead of being hashed and
//! interned again; when the remembered key is plain text (ASCII from the space up,
//! but `"` and `\`), the input is compared with it where the key starts
//! ([`Shapes::matches_raw`]), so the key is not even scanned as a string. And when
//! the last object's keys were all distinct and its table no bigger than they
//! need, the object itself is the next one's template: a next
//! object whose first key is the template's starts as a copy of it
//! (`lua_clonetable`, same size and layout), so each matching member only replaces
//! a value instead of inserting a key. What a copy holds that the new object does
//! not set is removed (the decoder's job, see `Parser::object`), so the result is
//! exactly what inserting member by member gives; a copy that another shape broke
//! is no template (a copy keeps its size, which must not spread to small objects).
//!
//! String values repeat too (a status, a currency, a type tag): for each of the first
//! [`VALUES`] positions at a depth, a string value read there is remembered with
//! the span of input text it was read from. A string value whose text, up to a
//! closing quote, is byte for byte that span is that same string (the same text
//! reads the same way), so it is pushed from the remembered Luau string without
//! being scanned, unescaped, hashed or interned ([`Shapes::matches_value`]). Each
//! value that does not match is remembered in its place, except that a position
//! whose values keep changing (an id, a name) does so only for its first
//! [`VALUE_MISSES`] misses in a row and then every [`VALUE_RETRY`]th (sparing the
//! copy into its slot); a match starts the count again.
//!
//! The Luau values (key strings, template tables and value strings) live in
//! [`STACK_SLOTS`] slots at the bottom of the decoder's stack (a stack slot is
//! cheaper to read and write than a table's); this module owns only the Rust-side
//! bookkeeping: which slot holds what, each key's bytes (pointers into the strings
//! those slots hold: Luau never moves or frees a string that is referenced, and a
//! slot's pointer is replaced whenever its string is) and each value's span of
//! input. Does not own parsing or building.

use std::ffi::c_int;

use super::encode::PLAIN;

/// Depths whose objects are remembered, from 1 (the outermost object) on; deeper
/// ones are built member by member. Four cover the usual API document: a list of
/// records with nested objects.
pub(super) const DEPTHS: usize = 4;
/// Keys remembered per depth; a longer object is remembered only in part and is no
/// template.
pub(super) const KEYS: usize = 32;

/// Member positions per depth whose last string value is remembered.
pub(super) const VALUES: usize = 16;

/// Misses in a row (the first value read at a position counts as one) after which
/// a position's string values are remembered only every [`VALUE_RETRY`]th miss
/// (see the module documentation).
const VALUE_MISSES: u8 = 2;
/// See [`VALUE_MISSES`]: a position that stopped remembering each value still
/// takes a new one this often, so a value that starts repeating later is found.
const VALUE_RETRY: u8 = 16;

/// Stack slots per depth: the keys, the template, then the values.
const SLOTS: usize = KEYS + 1 + VALUES;

/// The stack slots reserved for the remembered values (stack indices 1 to this).
pub(super) const STACK_SLOTS: c_int = (DEPTHS * SLOTS) as c_int;

/// A remembered key: the data of the Luau string a reserved slot holds (see
/// [`Shapes::remember`]).
#[derive(Clone, Copy)]
struct Key {
    ptr: *const u8,
    len: usize,
    /// Whether it is plain text, which a JSON string holds as it is (see
    /// [`Shapes::matches_raw`]).
    plain: bool,
}

impl Key {
    fn bytes(&self) -> &[u8] {
        // SAFETY: the pointer is the data of a Luau string a reserved slot holds
        // (see `remember`), `len` bytes long; Luau strings are immutable and never
        // move while referenced.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// The last object closed at one depth.
#[derive(Default)]
struct Depth {
    /// Its first keys, in order.
    keys: Vec<Key>,
    /// How many of `keys` it had (the rest belong to older objects).
    count: usize,
    /// Whether its slot holds it as a template (all its keys distinct and
    /// remembered).
    template: bool,
    /// For each of the first [`VALUES`] positions, the input span (start, end:
    /// between the quotes) of the string value remembered there, whose string its
    /// value slot holds; `None` before one was.
    values: [Option<(usize, usize)>; VALUES],
    /// For the same positions: string values in a row that did not match (counted
    /// up to `VALUE_MISSES + VALUE_RETRY`, which is counted as `VALUE_MISSES`).
    value_misses: [u8; VALUES],
}

/// See the module documentation.
#[derive(Default)]
pub(super) struct Shapes {
    depths: Vec<Depth>,
}

impl Shapes {
    /// Whether objects at `depth` are remembered.
    pub(super) fn remembers(depth: usize) -> bool {
        (1..=DEPTHS).contains(&depth)
    }

    fn depth(&mut self, depth: usize) -> &mut Depth {
        if self.depths.len() <= depth {
            self.depths.resize_with(depth + 1, Depth::default);
        }
        &mut self.depths[depth]
    }

    /// The stack slot for key `index` (below [`KEYS`]) at a remembered `depth`.
    pub(super) fn key_slot(depth: usize, index: usize) -> c_int {
        ((depth - 1) * SLOTS + index + 1) as c_int
    }

    /// The stack slot for the template at a remembered `depth`.
    pub(super) fn template_slot(depth: usize) -> c_int {
        ((depth - 1) * SLOTS + KEYS + 1) as c_int
    }

    /// The stack slot for the string value at position `index` (below [`VALUES`])
    /// at a remembered `depth`.
    pub(super) fn value_slot(depth: usize, index: usize) -> c_int {
        ((depth - 1) * SLOTS + KEYS + 2 + index) as c_int
    }

    /// Where the string value at `input[at..]` (just after its opening quote) ends,
    /// when its text is that of the string value remembered at position `index` of
    /// `depth` (below [`VALUES`]): the same bytes, then a quote. The remembered text
    /// was read as a string that ended at its closing quote, so the same bytes end
    /// at the same place and read as the same string.
    #[inline]
    pub(super) fn matches_value(
        &self,
        depth: usize,
        index: usize,
        input: &[u8],
        at: usize,
    ) -> Option<usize> {
        let (start, end) = self.depths.get(depth)?.values[index]?;
        quoted_at(&input[start..end], input, at)
    }

    /// Records that the string value at position `index` (below [`VALUES`]) of
    /// `depth` matched the remembered one.
    #[inline]
    pub(super) fn value_matched(&mut self, depth: usize, index: usize) {
        self.depth(depth).value_misses[index] = 0;
    }

    /// Records that the string value at position `index` (below [`VALUES`]) of
    /// `depth`, read from `input[start..end]`, did not match the remembered one,
    /// and says whether it is remembered in its place: if so, the caller puts its
    /// string into the value slot.
    pub(super) fn value_missed(
        &mut self,
        depth: usize,
        index: usize,
        start: usize,
        end: usize,
    ) -> bool {
        let d = self.depth(depth);
        let misses = d.value_misses[index] + 1;
        let retry = misses == VALUE_MISSES + VALUE_RETRY;
        d.value_misses[index] = if retry { VALUE_MISSES } else { misses };
        if misses > VALUE_MISSES && !retry {
            return false;
        }
        d.values[index] = Some((start, end));
        true
    }

    /// How many keys the template at `depth` has, if there is one.
    pub(super) fn template(&self, depth: usize) -> Option<usize> {
        self.depths
            .get(depth)
            .filter(|d| d.template)
            .map(|d| d.count)
    }

    fn key(&self, depth: usize, index: usize) -> Option<&Key> {
        self.depths.get(depth).and_then(|d| d.keys.get(index))
    }

    /// Whether key `index` at `depth` is remembered with exactly these bytes.
    pub(super) fn matches(&self, depth: usize, index: usize, key: &[u8]) -> bool {
        self.key(depth, index)
            .is_some_and(|known| known.len == key.len() && same_bytes(known.bytes(), key))
    }

    /// Where the key at `input[at..]` (just after its opening quote) ends, when it is
    /// key `index` at `depth`, remembered as plain text, written as it is: its
    /// bytes, then the closing quote. A plain key has no escape and no byte an
    /// escape could stand for, so text that matches is that key, and text that
    /// does not (an escaped spelling, another key) is left to the string parser.
    pub(super) fn matches_raw(
        &self,
        depth: usize,
        index: usize,
        input: &[u8],
        at: usize,
    ) -> Option<usize> {
        let key = self.key(depth, index).filter(|key| key.plain)?;
        quoted_at(key.bytes(), input, at)
    }

    /// Records that the stack slot for key `index` at `depth` now holds the
    /// Luau string whose data is `ptr` (`len` bytes).
    ///
    /// # Safety
    /// The string stays in that slot until the next `remember` of the same slot or
    /// the end of the decode.
    pub(super) unsafe fn remember(
        &mut self,
        depth: usize,
        index: usize,
        ptr: *const u8,
        len: usize,
    ) {
        // An object's keys are remembered in order: a position is either known
        // already or the next one.
        let mut key = Key {
            ptr,
            len,
            plain: false,
        };
        key.plain = key.bytes().iter().all(|&b| PLAIN[b as usize]);
        let keys = &mut self.depth(depth).keys;
        match keys.get_mut(index) {
            Some(slot) => *slot = key,
            None => {
                debug_assert_eq!(index, keys.len());
                keys.push(key);
            }
        }
    }

    /// Records that the object just closed at `depth` had `count` members (the first
    /// `KEYS` of them remembered in order), and whether its slot now holds it
    /// as the template (the caller stores it when [`Shapes::can_template`] said so).
    pub(super) fn closed(&mut self, depth: usize, count: usize, template: bool) {
        let d = self.depth(depth);
        d.count = count.min(KEYS);
        d.template = template;
    }

    /// Whether an object of `count` members whose keys are remembered at `depth`
    /// can be a template: all remembered and distinct. Luau interns strings, so
    /// distinct keys are distinct string pointers.
    pub(super) fn can_template(&self, depth: usize, count: usize) -> bool {
        let keys = self.depths.get(depth).and_then(|d| d.keys.get(..count));
        count <= KEYS
            && keys.is_some_and(|keys| {
                keys.iter()
                    .enumerate()
                    .all(|(i, key)| keys[..i].iter().all(|other| other.ptr != key.ptr))
            })
    }
}

/// Where the closing quote is when `input[at..]` is `text` then a quote.
#[inline]
fn quoted_at(text: &[u8], input: &[u8], at: usize) -> Option<usize> {
    let close = at.checked_add(text.len())?;
    if input.get(close) != Some(&b'"') {
        return None;
    }
    same_bytes(text, &input[at..close]).then_some(close)
}

/// `a == b` for slices of one length; keys and repeated values are short, and
/// overlapping loads compare up to 32 bytes without a call to `memcmp`.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    fn word4(s: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]])
    }
    fn word8(s: &[u8], at: usize) -> u64 {
        let mut word = [0; 8];
        word.copy_from_slice(&s[at..at + 8]);
        u64::from_le_bytes(word)
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        // Positions 0, n/2 and n-1 cover every byte of 1 to 3.
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        17..=32 => {
            word8(a, 0) == word8(b, 0)
                && word8(a, 8) == word8(b, 8)
                && word8(a, n - 16) == word8(b, n - 16)
                && word8(a, n - 8) == word8(b, n - 8)
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::{Shapes, VALUE_MISSES, VALUE_RETRY, same_bytes};

    /// Feeds the quoted values of `input` through one position as the decoder
    /// does; returns, for each, whether it matched the remembered one.
    fn hits(input: &str) -> Vec<bool> {
        let input = input.as_bytes();
        let mut shapes = Shapes::default();
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(open) = input[at..].iter().position(|&b| b == b'"') {
            let start = at + open + 1;
            let close = start + input[start..].iter().position(|&b| b == b'"').unwrap();
            match shapes.matches_value(1, 0, input, start) {
                Some(end) => {
                    assert_eq!(end, close);
                    shapes.value_matched(1, 0);
                    out.push(true);
                }
                None => {
                    shapes.value_missed(1, 0, start, close);
                    out.push(false);
                }
            }
            at = close + 1;
        }
        out
    }

    #[test]
    fn a_position_whose_values_keep_changing_still_finds_one_that_repeats() {
        // Five different values, then one value forty times: the position stops
        // taking each new value after VALUE_MISSES misses, takes one again within
        // VALUE_RETRY more, and from then on every repeat matches.
        let mut text = String::from(r#""v0" "v1" "v2" "v3" "v4""#);
        text.push_str(&r#" "same""#.repeat(40));
        let repeats = hits(&text);
        let first_hit = repeats
            .iter()
            .position(|&h| h)
            .expect("the repeated value is found");
        assert!(
            first_hit <= usize::from(VALUE_MISSES + VALUE_RETRY) + 1,
            "first hit at {first_hit}"
        );
        assert!(repeats[first_hit..].iter().all(|&h| h), "{repeats:?}");
        // A value right after it stopped taking new ones is not remembered...
        assert_eq!(hits(r#""a" "b" "c" "c""#), [false, false, false, false]);
        // ...and one it took is, and a match starts the count again.
        assert_eq!(
            hits(r#""a" "a" "b" "b" "c" "c""#),
            [false, true, false, true, false, true]
        );
    }

    #[test]
    fn same_bytes_is_slice_equality_for_every_short_length() {
        // Every length to 40, each byte position changed in turn.
        for n in 0..=40usize {
            let a: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(37) ^ 0x55).collect();
            assert!(same_bytes(&a, &a.clone()), "equal, length {n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x01;
                assert!(!same_bytes(&a, &b), "length {n}, byte {at} differs");
            }
            let longer = [a.as_slice(), b"x"].concat();
            assert!(!same_bytes(&a, &longer), "length {n} against {}", n + 1);
        }
    }
}
