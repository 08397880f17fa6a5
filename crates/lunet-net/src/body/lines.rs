//! Splitting a byte stream into lines as it arrives: [`LineSplitter`], used by
//! `BodyStream:lines()` and (through [`super::sse`]) `BodyStream:events()`.
//!
//! A line ends at CRLF, LF or CR, and a CRLF split between two chunks is still one
//! line ending. Owns: the buffer of bytes not yet returned as lines, and the bound on
//! how long one line may grow ([`MAX_LINE`]). Does not own: reading the body or
//! decoding it (the caller pushes decoded chunks), nor what a line means.

/// The longest line kept: Luau's string limit (1 GiB).
pub(crate) const MAX_LINE: usize = lunet_runtime::codec::compression::MAX_STRING_LEN;

/// Bytes received but not yet returned as lines.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    buffer: Vec<u8>,
    /// Where the unreturned bytes start in `buffer`.
    start: usize,
    /// How far past `start` is known to hold no line ending.
    scanned: usize,
    /// The last line ended with a CR at the end of a chunk: a LF that comes next
    /// belongs to it.
    skip_lf: bool,
}

/// A line that would pass [`MAX_LINE`].
#[derive(Debug, PartialEq)]
pub(crate) struct LineTooLong;

impl LineSplitter {
    /// Adds the next chunk of the stream.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<(), LineTooLong> {
        if self.start > 0 && self.start * 2 >= self.buffer.len() {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        if self.buffer.len() - self.start + chunk.len() > MAX_LINE + 2 {
            return Err(LineTooLong);
        }
        self.buffer.extend_from_slice(chunk);
        Ok(())
    }

    /// Drops the LF that completes a CRLF whose CR ended the last line.
    fn settle(&mut self) {
        if self.skip_lf && self.start < self.buffer.len() {
            if self.buffer[self.start] == b'\n' {
                self.start += 1;
            }
            self.skip_lf = false;
        }
    }

    /// The next complete line, without its ending.
    pub(crate) fn next_line(&mut self) -> Option<&[u8]> {
        self.settle();
        let rest = &self.buffer[self.start..];
        let Some(offset) = rest[self.scanned..]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
        else {
            self.scanned = rest.len();
            return None;
        };
        let end = self.scanned + offset;
        let line_start = self.start;
        let mut next = line_start + end + 1;
        if self.buffer[line_start + end] == b'\r' {
            match self.buffer.get(next) {
                Some(b'\n') => next += 1,
                Some(_) => {}
                None => self.skip_lf = true,
            }
        }
        self.start = next;
        self.scanned = 0;
        Some(&self.buffer[line_start..line_start + end])
    }

    /// At the end of the stream: the last line, when it had no ending.
    pub(crate) fn finish(&mut self) -> Option<Vec<u8>> {
        self.take_rest()
    }

    /// The bytes not yet returned as lines (for a `read()` after `lines()`).
    pub(crate) fn take_rest(&mut self) -> Option<Vec<u8>> {
        self.settle();
        let rest = self.buffer.split_off(self.start);
        self.buffer.clear();
        self.start = 0;
        self.scanned = 0;
        (!rest.is_empty()).then_some(rest)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every line of `chunks` pushed in order, the unterminated last one included.
    pub(crate) fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut splitter = LineSplitter::default();
        let mut lines = Vec::new();
        for chunk in chunks {
            splitter.push(chunk).unwrap();
            while let Some(line) = splitter.next_line() {
                lines.push(line.to_vec());
            }
        }
        lines.extend(splitter.finish());
        lines
    }

    /// The reference: lines of a whole text, by the same rules, written plainly.
    fn reference(text: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        let mut line = Vec::new();
        let mut i = 0;
        while i < text.len() {
            match text[i] {
                b'\r' => {
                    lines.push(std::mem::take(&mut line));
                    if text.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    }
                }
                b'\n' => lines.push(std::mem::take(&mut line)),
                byte => line.push(byte),
            }
            i += 1;
        }
        if !line.is_empty() {
            lines.push(line);
        }
        lines
    }

    #[test]
    fn cr_lf_and_crlf_all_end_lines() {
        let lines = split(&[b"a\r\nb\nc\rd\r", b"\ne\n\nf"]);
        let expected: Vec<&[u8]> = vec![b"a", b"b", b"c", b"d", b"e", b"", b"f"];
        assert_eq!(lines, expected);
        assert_eq!(split(&[b"x\r", b"\r", b"\n"]), vec![b"x".to_vec(), vec![]]);
    }

    #[test]
    fn the_rest_is_what_no_line_took() {
        let mut splitter = LineSplitter::default();
        splitter.push(b"one\r").unwrap();
        assert_eq!(splitter.next_line(), Some(&b"one"[..]));
        splitter.push(b"\ntwo").unwrap();
        assert_eq!(splitter.take_rest(), Some(b"two".to_vec()));
        assert_eq!(splitter.take_rest(), None);
    }

    fn text() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                Just(b'\r'),
                Just(b'\n'),
                Just(b'a'),
                Just(b'b'),
                any::<u8>()
            ],
            0..200,
        )
    }

    proptest! {
        #[test]
        fn any_split_gives_the_reference_lines(
            text in text(),
            cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..8),
        ) {
            let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(text.len() + 1)).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut at = 0;
            for cut in cuts {
                chunks.push(&text[at..cut]);
                at = cut;
            }
            chunks.push(&text[at..]);
            prop_assert_eq!(split(&chunks), reference(&text));
        }
    }
}
