//! Server-Sent Events: the WHATWG `text/event-stream` interpretation
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation>),
//! line by line, for `BodyStream:events()`.
//!
//! Owns: turning lines (from [`super::lines::LineSplitter`], which owns the CRLF,
//! LF and CR endings) into [`Event`]s: comments (`:`) skipped, a field without a colon
//! taken with an empty value, one space after the colon removed, `data` lines joined
//! by "\n", `event` defaulting to "message", `id` (ignored when it contains NUL) kept
//! as the last event ID until changed (as `EventSource`'s `lastEventId`), `retry` only
//! when all ASCII digits, an event dispatched at a blank line and only when it has
//! data, a UTF-8 byte order mark at the start stripped, and the text decoded as
//! UTF-8 with replacement characters. An event not finished by a blank line when the
//! stream ends is dropped (the caller just stops feeding lines). Does not own:
//! reconnecting (a `BodyStream` is one response), or reading the body.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    /// The `event` field, "message" when none was given.
    pub(crate) event: String,
    pub(crate) data: String,
    /// The last event ID, when not empty.
    pub(crate) id: Option<String>,
    /// The `retry` field of this event's lines, in milliseconds.
    pub(crate) retry: Option<f64>,
}

/// The event being assembled and the state that outlives events.
#[derive(Debug, Default)]
pub(crate) struct EventParser {
    started: bool,
    event_type: String,
    data: String,
    has_data: bool,
    last_id: String,
    retry: Option<f64>,
}

impl EventParser {
    /// Takes one line (without its ending); returns the event a blank line dispatches.
    pub(crate) fn line(&mut self, line: &[u8]) -> Option<Event> {
        let mut line = line;
        if !self.started {
            self.started = true;
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return None;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"event" => self.event_type = value.into_owned(),
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            b"id" if !value.contains('\0') => self.last_id = value.into_owned(),
            b"retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Digits only, so this parses (very long ones as infinity).
                self.retry = value.parse().ok();
            }
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<Event> {
        let event_type = std::mem::take(&mut self.event_type);
        let retry = self.retry.take();
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        let event = if event_type.is_empty() {
            "message".to_string()
        } else {
            event_type
        };
        Some(Event {
            event,
            data: std::mem::take(&mut self.data),
            id: (!self.last_id.is_empty()).then(|| self.last_id.clone()),
            retry,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::lines::LineSplitter;
    use super::*;
    use proptest::prelude::*;

    /// The events of a stream that arrives in `chunks`.
    fn events(chunks: &[&[u8]]) -> Vec<Event> {
        let mut splitter = LineSplitter::default();
        let mut parser = EventParser::default();
        let mut events = Vec::new();
        for chunk in chunks {
            splitter.push(chunk).unwrap();
            while let Some(line) = splitter.next_line() {
                events.extend(parser.line(line));
            }
        }
        events
    }

    fn event(data: &str, id: Option<&str>) -> Event {
        Event {
            event: "message".into(),
            data: data.into(),
            id: id.map(Into::into),
            retry: None,
        }
    }

    /// The example streams of the WHATWG specification (section 9.2.5, "Event stream
    /// interpretation" and 9.2.6 "Authoring notes"), with the events it says they
    /// dispatch.
    #[test]
    fn the_whatwg_examples() {
        let cases: Vec<(&str, Vec<Event>)> = vec![
            (
                "data: YHOO\ndata: +2\ndata: 10\n\n",
                vec![event("YHOO\n+2\n10", None)],
            ),
            (
                ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n",
                vec![event("first event", Some("1")), event("second event", None)],
            ),
            (
                ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
                vec![
                    event("first event", Some("1")),
                    event("second event", None),
                    event(" third event", None),
                ],
            ),
            (
                "data\n\ndata\ndata\n\ndata:",
                vec![event("", None), event("\n", None)],
            ),
            (
                "data:test\n\ndata: test\n\n",
                vec![event("test", None), event("test", None)],
            ),
            (
                "event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
                vec![
                    Event {
                        event: "add".into(),
                        ..event("73857293", None)
                    },
                    Event {
                        event: "remove".into(),
                        ..event("2153", None)
                    },
                    Event {
                        event: "add".into(),
                        ..event("113411", None)
                    },
                ],
            ),
        ];
        for (stream, expected) in cases {
            assert_eq!(events(&[stream.as_bytes()]), expected, "{stream:?}");
        }
    }

    #[test]
    fn fields_ids_retry_bom_and_endings() {
        let stream = "\u{FEFF}retry: 1500\r\nid: a\0b\r\ndata: x\r\n\r\nretry: 15x\rid: 7\rdata\r\r: keep-alive\n\nevent\ndata: y\n\n";
        let got = events(&[stream.as_bytes()]);
        assert_eq!(
            got,
            vec![
                Event {
                    retry: Some(1500.0),
                    ..event("x", None)
                },
                event("", Some("7")),
                event("y", Some("7")),
            ]
        );
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_events(
            lines in proptest::collection::vec(
                prop_oneof![
                    Just("data: a".to_string()),
                    Just("data:b".to_string()),
                    Just("data".to_string()),
                    Just(": comment".to_string()),
                    Just("id: 3".to_string()),
                    Just("retry: 20".to_string()),
                    Just("event: e".to_string()),
                    Just("".to_string()),
                    "[a-z:\u{e9} ]{0,12}",
                ],
                0..30,
            ),
            endings in proptest::collection::vec(prop_oneof![Just("\n"), Just("\r"), Just("\r\n")], 30),
            cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..10),
        ) {
            let mut stream = Vec::new();
            for (line, ending) in lines.iter().zip(&endings) {
                stream.extend_from_slice(line.as_bytes());
                stream.extend_from_slice(ending.as_bytes());
            }
            let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(stream.len() + 1)).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut at = 0;
            for cut in cuts {
                chunks.push(&stream[at..cut]);
                at = cut;
            }
            chunks.push(&stream[at..]);
            prop_assert_eq!(events(&chunks), events(&[&stream]));
            // Byte by byte, too.
            let bytes: Vec<&[u8]> = stream.chunks(1).collect();
            prop_assert_eq!(events(&bytes), events(&[&stream]));
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            piece in 1usize..40,
        ) {
            let chunks: Vec<&[u8]> = bytes.chunks(piece).collect();
            for event in events(&chunks) {
                prop_assert!(!event.event.is_empty());
            }
        }
    }
}
