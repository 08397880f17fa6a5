//! Codec tests in a bare Lua VM, with serde_json as the reference: property tests
//! for round trips, canonical output, exact doubles, and never panicking on bytes.

use mlua::{Lua, Value};
use proptest::prelude::*;
use serde_json::{Map, Number, Value as Json};

use super::{decode::decode, encode::encode};

fn encode_str(lua: &Lua, value: &Value, pretty: bool) -> String {
    String::from_utf8(encode(lua, value, pretty).unwrap()).unwrap()
}

/// The JSON a Luau round trip must produce for `v`: sorted keys, null object members
/// dropped, empty arrays as `{}`, numbers as doubles (whole ones as integers).
fn canonical(v: &Json) -> Json {
    match v {
        Json::Number(n) => {
            let f = n.as_f64().unwrap();
            if f.fract() == 0.0
                && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f)
                && !(f == 0.0 && f.is_sign_negative())
            {
                Json::Number(Number::from(f as i64))
            } else {
                Json::Number(Number::from_f64(f).unwrap())
            }
        }
        Json::Array(items) if items.is_empty() => Json::Object(Map::new()),
        Json::Array(items) => Json::Array(items.iter().map(canonical).collect()),
        Json::Object(map) => {
            let mut entries: Vec<_> = map.iter().filter(|(_, v)| !v.is_null()).collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            Json::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), canonical(v)))
                    .collect(),
            )
        }
        other => other.clone(),
    }
}

/// A decoded number (it comes off the Luau stack as mlua sees it: whole numbers
/// that fit an i64, except -0, as `Value::Integer`).
fn number_of(value: &Value) -> f64 {
    match value {
        Value::Number(n) => *n,
        Value::Integer(i) => *i as f64,
        other => panic!("not a number: {other:?}"),
    }
}

fn number() -> impl Strategy<Value = Json> {
    prop_oneof![
        (-(1i64 << 53)..(1i64 << 53)).prop_map(|i| Json::Number(i.into())),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| Json::Number(Number::from_f64(f).unwrap())),
        (-1000i32..1000, 1u32..1000).prop_map(|(a, b)| {
            Json::Number(Number::from_f64(f64::from(a) / f64::from(b)).unwrap())
        }),
    ]
}

/// JSON values Luau holds the same way: no nulls inside arrays (they would be holes).
fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Json::Bool),
        number(),
        any::<String>().prop_map(Json::String),
        "[a-z\"\\\\\u{0}-\u{1f}é😀]{0,8}".prop_map(Json::String),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Json::Array),
            prop::collection::vec(
                (
                    "[a-zA-Z0-9_\"\\\\é ]{0,6}",
                    prop_oneof![9 => inner, 1 => Just(Json::Null)]
                ),
                0..8
            )
            .prop_map(|pairs| Json::Object(pairs.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip_matches_serde_json(v in json_value()) {
        let lua = Lua::new();
        let expected = canonical(&v);
        for text in [serde_json::to_string(&v).unwrap(), serde_json::to_string_pretty(&v).unwrap()] {
            let decoded = decode(&lua, text.as_bytes()).unwrap();
            prop_assert_eq!(encode_str(&lua, &decoded, false), serde_json::to_string(&expected).unwrap());
            prop_assert_eq!(encode_str(&lua, &decoded, true), serde_json::to_string_pretty(&expected).unwrap());
        }
    }

    #[test]
    fn doubles_round_trip_exactly(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
        let lua = Lua::new();
        let text = encode_str(&lua, &Value::Number(f), false);
        let back = decode(&lua, text.as_bytes()).unwrap();
        let g = number_of(&back);
        prop_assert_eq!(f.to_bits(), g.to_bits(), "{} -> {}", f, text);
        // Non-whole numbers print exactly as serde_json prints them.
        if f.fract() != 0.0 {
            prop_assert_eq!(text, serde_json::to_string(&f).unwrap());
        }
        // And decoding is exact for serde_json's (shortest) form too.
        let theirs = serde_json::to_string(&f).unwrap();
        let h = number_of(&decode(&lua, theirs.as_bytes()).unwrap());
        prop_assert_eq!(f.to_bits(), h.to_bits());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let lua = Lua::new();
        let _ = decode(&lua, &bytes);
    }

    #[test]
    fn strings_of_any_bytes_decode_exactly_when_they_are_utf8(
        parts in prop::collection::vec(
            prop_oneof![
                (0x20u8..0x80).prop_filter("plain", |b| *b != b'"' && *b != b'\\')
                    .prop_map(|b| vec![b]),
                (0x80u8..=0xff).prop_map(|b| vec![b]),
                any::<char>()
                    .prop_filter("plain", |c| *c >= ' ' && *c != '"' && *c != '\\')
                    .prop_map(|c| c.to_string().into_bytes()),
            ],
            0..120,
        ),
    ) {
        let lua = Lua::new();
        let bytes = parts.concat();
        let input = [&b"[\"x\", {\"k\": \""[..], &bytes, b"\"}]"].concat();
        let ours = decode(&lua, &input);
        match std::str::from_utf8(&input) {
            Ok(_) => {
                let theirs: Json = serde_json::from_slice(&input).unwrap();
                let expected = serde_json::to_string(&canonical(&theirs)).unwrap();
                prop_assert_eq!(encode_str(&lua, &ours.unwrap(), false), expected);
            }
            Err(utf8) => {
                let err = ours.unwrap_err();
                prop_assert!(err.to_string().starts_with("invalid UTF-8"), "{}", err);
                prop_assert_eq!(err.offset(), utf8.valid_up_to());
            }
        }
    }

    #[test]
    fn accepts_exactly_what_serde_json_accepts(text in "[\\[\\]{}\",:0-9.eE+ \\-tfalsenru\\\\/]{0,24}") {
        let lua = Lua::new();
        let ours = decode(&lua, text.as_bytes()).is_ok();
        let theirs = serde_json::from_str::<Json>(&text).is_ok();
        prop_assert_eq!(ours, theirs, "{:?}", text);
    }
}

#[test]
fn errors_carry_offsets_and_positions() {
    let lua = Lua::new();
    let err = decode(&lua, b"{\"a\": 1,\n  \"b\" 2}").unwrap_err();
    assert_eq!(err.offset(), 15);
    assert_eq!(
        err.to_string(),
        "expected ':' after an object key, found '2' at line 2 column 7 (byte 15)"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let lua = Lua::new();
    let deep = "[".repeat(100_000);
    let err = decode(&lua, deep.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("nested more than 512"), "{err}");
    let ok = format!("{}{}", "[".repeat(512), "]".repeat(512));
    assert!(decode(&lua, ok.as_bytes()).is_ok());
}

#[test]
fn exact_doubles_from_the_issue() {
    let lua = Lua::new();
    for text in [
        "90.28571428571429",
        "0.1",
        "1e-300",
        "5e-324",
        "1.7976931348623157e308",
        "-0.0",
        "2.2250738585072014e-308",
        "9007199254740993",
        "123456789012345678901234567890",
    ] {
        let n = number_of(&decode(&lua, text.as_bytes()).unwrap());
        assert_eq!(
            n.to_bits(),
            text.parse::<f64>().unwrap().to_bits(),
            "{text}"
        );
    }
}

/// What `serde.encode("json")` produced before this codec: mlua's serde bridge with
/// sorted keys, written by serde_json.
fn old_encode(value: &Value, pretty: bool) -> Option<String> {
    let serializable = value.to_serializable().sort_keys(true);
    if pretty {
        serde_json::to_string_pretty(&serializable).ok()
    } else {
        serde_json::to_string(&serializable).ok()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn output_matches_the_old_serde_bridge(v in json_value()) {
        let lua = Lua::new();
        let decoded = decode(&lua, serde_json::to_string(&v).unwrap().as_bytes()).unwrap();
        // As a script hands it over: through the Lua stack (whole numbers become
        // Value::Integer there, which is what the old bridge printed without ".0").
        let identity = lua.load("return ...").into_function().unwrap();
        let decoded: Value = identity.call(decoded).unwrap();
        for pretty in [false, true] {
            prop_assert_eq!(Some(encode_str(&lua, &decoded, pretty)), old_encode(&decoded, pretty));
        }
    }
}

#[test]
fn output_matches_the_old_serde_bridge_for_luau_oddities() {
    let lua = Lua::new();
    let values: Vec<Value> = lua
        .load(
            r#"return {
                {1, nil, 3}, {0/0, math.huge, -math.huge, -0, 1e20, 2^63, -2^63, 2^53 + 1, 1e-7, 5e-324},
                {}, {1, 2, x = 3}, {[2] = "b", [10] = "j", b = 1, [true] = 0, [false] = 1, [1.5] = 2, [-3] = 4},
                "\xff\x00A", buffer.fromstring("hi"), vector.create(1, 2.5, -3), vector.create(0/0, 1e30, 0.1),
                'q"b\\s/\n\r\t\b\f\0\x1f\x7fé😀', {a = {1, {b = {}}}, c = "d"}, {{}, {}},
                {[2^53] = 1, [0.1] = 2, ["10"] = 3, ["9"] = 4},
            }"#,
        )
        .eval::<mlua::Table>()
        .unwrap()
        .sequence_values::<Value>()
        .collect::<mlua::Result<_>>()
        .unwrap();
    for value in values {
        for pretty in [false, true] {
            let old = old_encode(&value, pretty).unwrap();
            assert_eq!(encode_str(&lua, &value, pretty), old, "{value:?}");
        }
    }
}

#[test]
fn encode_nests_512_deep_and_errors_past_it() {
    let lua = Lua::new();
    let nest = lua
        .load(
            r#"local depth, object = ...
            local t = {}
            for _ = 2, depth do t = if object then {k = t} else {t} end
            return t"#,
        )
        .into_function()
        .unwrap();
    for object in [false, true] {
        let deep: Value = nest.call((512, object)).unwrap();
        let text = encode_str(&lua, &deep, false);
        let (open, close) = if object { ("{\"k\":", "}") } else { ("[", "]") };
        assert_eq!(
            text,
            format!("{}{{}}{}", open.repeat(511), close.repeat(511))
        );
        let too_deep: Value = nest.call((513, object)).unwrap();
        let err = encode(&lua, &too_deep, false).unwrap_err().to_string();
        assert!(err.contains("nested more than 512 deep"), "{err}");
    }
}

#[test]
fn decode_deep_and_wide_containers_round_trip() {
    // Wide containers at every level: values move off the Luau stack into spill
    // tables (per container, and once the stack is high), and still come out whole.
    let lua = Lua::new();
    let numbers: Vec<String> = (1..=300).map(|i| i.to_string()).collect();
    let numbers = numbers.join(",");
    let mut text = String::new();
    for level in 0..500 {
        if level % 2 == 0 {
            text.push_str(&format!("[{numbers},"));
        } else {
            text.push_str("{\"a\":1,\"b\":2,\"c\":3,\"d\":");
        }
    }
    text.push_str("{}");
    for level in (0..500).rev() {
        text.push(if level % 2 == 0 { ']' } else { '}' });
    }
    let decoded = decode(&lua, text.as_bytes()).unwrap();
    assert_eq!(encode_str(&lua, &decoded, false), text);

    // A long array with holes and a big object with repeated and null members.
    let items: Vec<String> = (1..=5000)
        .map(|i| {
            if i % 7 == 0 {
                "null".into()
            } else {
                i.to_string()
            }
        })
        .collect();
    let members: Vec<String> = (0..3000)
        .map(|i| match i % 10 {
            1 => format!("\"k{}\":null", i / 2),
            _ => format!("\"k{}\":{i}", i / 2),
        })
        .collect();
    let text = format!("[[{}],{{{}}}]", items.join(","), members.join(","));
    let decoded = decode(&lua, text.as_bytes()).unwrap();
    let check = lua
        .load(
            r#"local v = ...
            local list, map = v[1], v[2]
            assert(#list == 5000, "length " .. #list)
            for i = 1, 5000 do
                assert(list[i] == (if i % 7 == 0 then nil else i), i)
            end
            local count = 0
            for k, x in map do
                count += 1
            end
            -- Each key appears twice (i and i + 1); the later one wins, and a null
            -- removes the key.
            for i = 0, 2999 do
                local later = if i % 2 == 0 then i + 1 else i
                local expected = if later % 10 == 1 then nil else later
                assert(map["k" .. i // 2] == expected, "k" .. i // 2)
            end
            return count"#,
        )
        .into_function()
        .unwrap();
    let count: usize = check.call(decoded).unwrap();
    assert_eq!(count, 1200);
}

#[test]
fn odd_table_shapes_match_the_old_serde_bridge() {
    let lua = Lua::new();
    let values: Vec<Value> = lua
        .load(
            r#"local holes = {1, 2, 3, 4, 5}
            holes[2] = nil
            holes[4] = nil
            local shrunk = {1, 2, 3}
            table.remove(shrunk)
            table.remove(shrunk, 1)
            local sparse = {}
            sparse[1] = "a"
            sparse[3] = "c"
            sparse[100] = "z"
            local mixed = {10, 20, 30, n = 3, [1.5] = "x", [-1] = "m", [true] = "t"}
            local hash_only = {}
            hash_only[2] = "b"
            hash_only[3] = "c"
            local emptied = {a = 1, b = 2}
            emptied.a = nil
            emptied.b = nil
            local grown = {}
            for i = 1, 100 do grown[i] = i end
            for i = 1, 100, 3 do grown[i] = nil end
            return {holes, shrunk, sparse, mixed, hash_only, emptied, grown,
                {[0] = "zero", [1] = "one"}, {[2^40] = 1, [-2^40] = 2, [0.5] = 3}}"#,
        )
        .eval::<mlua::Table>()
        .unwrap()
        .sequence_values::<Value>()
        .collect::<mlua::Result<_>>()
        .unwrap();
    assert_eq!(values.len(), 9);
    for value in values {
        for pretty in [false, true] {
            let old = old_encode(&value, pretty).unwrap();
            assert_eq!(encode_str(&lua, &value, pretty), old, "{value:?}");
        }
    }
}

#[test]
fn encoding_ignores_metamethods() {
    // Raw access only: __index, __len and __iter are never called.
    let lua = Lua::new();
    let value: Value = lua
        .load(
            r#"local meta = {
                __index = function() error("__index called") end,
                __len = function() error("__len called") end,
                __iter = function() error("__iter called") end,
            }
            return {setmetatable({}, meta), setmetatable({1, 2}, meta), setmetatable({a = 1}, meta)}"#,
        )
        .eval()
        .unwrap();
    assert_eq!(encode_str(&lua, &value, false), r#"[{},[1,2],{"a":1}]"#);
}

#[test]
fn strings_escape_at_every_position_like_serde_json() {
    // The writer skips 8 clean bytes at a time: put each special byte at every offset
    // of strings long enough to span several words.
    let lua = Lua::new();
    for special in ["\"", "\\", "\n", "\u{1}", "\u{1f}", "é", "😀", "\u{7f}"] {
        for at in 0..20 {
            let text = format!("{}{special}{}", "a".repeat(at), "b".repeat(19 - at));
            let value = Value::String(lua.create_string(&text).unwrap());
            assert_eq!(
                encode_str(&lua, &value, false),
                serde_json::to_string(&text).unwrap()
            );
        }
    }
    // Bytes that are not UTF-8, anywhere, make a byte array (not a broken string).
    for at in 0..20 {
        let mut bytes = vec![b'a'; 20];
        bytes[at] = 0xff;
        let value = Value::String(lua.create_string(&bytes).unwrap());
        let expected = format!(
            "[{}]",
            bytes
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(encode_str(&lua, &value, false), expected);
    }
}

#[test]
fn invalid_utf8_is_reported_wherever_it_is() {
    // An input with non-ASCII strings, or one that failed, is checked whole, so
    // invalid UTF-8 is always the error named, at its first bad byte.
    let lua = Lua::new();
    let long_key = [
        &b"[{\"ok \xc3\xa9\":1},{\""[..],
        &[b'k'; 100][..],
        b"\xe2\x82\":2}]",
    ]
    .concat();
    for (input, offset) in [
        (&b"[\"abcdefghij\xff\"]"[..], 12),
        (b"[\"a\\n\xc3\"]", 5),
        (b"\xff", 0),
        (b"[1, x, \"\xe2\x82\"]", 8),
        (b"[\"ok\"] \xfe", 7),
        // In a key, after a valid non-ASCII key, past the 64 bytes one SIMD step
        // checks.
        (&long_key, 115),
    ] {
        let err = decode(&lua, input).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid UTF-8 in the input"),
            "{err}"
        );
        assert_eq!(err.offset(), offset, "{input:?}");
    }
    let text = "[\"café ✓ — 😀 long enough to span words\"]";
    let decoded = decode(&lua, text.as_bytes()).unwrap();
    assert_eq!(encode_str(&lua, &decoded, false), text);
}

#[test]
fn sibling_objects_of_any_shape_decode_whole() {
    // Each object is sized by the last one closed at its depth: bigger, smaller,
    // empty and repeated-key siblings must all come out whole.
    let lua = Lua::new();
    let big: Vec<String> = (0..100).map(|i| format!("\"k{i}\":{i}")).collect();
    let text = format!(
        r#"[{{{}}},{{"a":1}},{{}},{{"x":{{"y":[{{"z":1,"w":2}},{{"z":3}}]}},"b":2,"c":3}},{{"a":null,"a":5,"b":null}},{{{}}}]"#,
        big.join(","),
        big[..70].join(",")
    );
    let reference: Json = serde_json::from_str(&text).unwrap();
    let decoded = decode(&lua, text.as_bytes()).unwrap();
    assert_eq!(
        encode_str(&lua, &decoded, false),
        serde_json::to_string(&canonical(&reference)).unwrap()
    );
}

/// A key remembered as plain text is matched against the input as written
/// (`Shapes::matches_raw`): every spelling that only looks like it (a prefix, a
/// longer key, escapes, a remembered key that needed escapes, non-ASCII, the input
/// ending inside it) must still read as what it is.
#[test]
fn keys_matched_as_written_only_when_they_are_that_key() {
    let lua = Lua::new();
    let pad = "x".repeat(300);
    for text in [
        format!(
            r#"[{{"a":1,"ab":2,"p":"{pad}"}},{{"a":3,"ab":4}},{{"ab":5,"a":6}},{{"\u0061":7,"a\"":8}},{{"a":9,"a\\b":10}},{{"a\\b":11,"a\\b":12}},{{"a\bb":13}},{{"café":14}},{{"café":15,"caf":16}},{{"a":17,"abc":18}},{{"a":19,"a":20}}]"#
        ),
        format!(r#"[{{"key":1,"p":"{pad}"}},{{"key":2}},{{"ke"#),
        format!(r#"[{{"key":1,"p":"{pad}"}},{{"key\u0000":2}}]"#),
        format!("[{{\"key\":1,\"p\":\"{pad}\"}},{{\"ke\u{1}\":2}}]"),
        // Remembered keys that needed escapes: `a\` then the text `a\"...`, and
        // an escaped control character then that character raw (both invalid).
        format!(r#"[{{"a\\":1,"p":"{pad}"}},{{"a\":2,"b":3}}]"#),
        format!("[{{\"\\u0001\":1,\"p\":\"{pad}\"}},{{\"\u{1}\":2}}]"),
    ] {
        match serde_json::from_str::<Json>(&text) {
            Ok(reference) => {
                let decoded = decode(&lua, text.as_bytes()).unwrap();
                assert_eq!(
                    encode_str(&lua, &decoded, false),
                    serde_json::to_string(&canonical(&reference)).unwrap(),
                    "{text}"
                );
            }
            Err(_) => assert!(decode(&lua, text.as_bytes()).is_err(), "{text}"),
        }
    }
}

/// A string value is pushed from the one remembered at its position when its text
/// is the same (`Shapes::matches_value`): every text that only begins like it (a
/// prefix of it, it with more after, it with an escaped quote after, the same
/// string spelled with escapes, the input ending inside it) must read as what it
/// is. Each pair is its own document, so the second value meets the first one
/// remembered (a position's first two values are always remembered).
#[test]
fn string_values_reused_only_when_their_text_is_the_same() {
    let lua = Lua::new();
    let pad = "x".repeat(300);
    let pairs = [
        (r#""ab""#, r#""ab""#),
        (r#""ab""#, r#""abc""#),
        (r#""abc""#, r#""ab""#),
        (r#""ab""#, r#""a""#),
        (r#""ab""#, r#""ab\"""#),
        (r#""ab\"""#, r#""ab\\""#),
        (r#""ab\\""#, r#""ab\\""#),
        (r#""ab\\""#, r#""ab\\\"""#),
        (r#""ab""#, r#""a\u0062""#),
        (r#""a\u0062""#, r#""ab""#),
        (r#""a\u0062""#, r#""a\u0062""#),
        (r#""\ud83d\ude00""#, r#""\ud83d\ude00""#),
        (r#""""#, r#""""#),
        (r#""""#, r#""a""#),
        (r#""café""#, r#""café""#),
        (r#""café""#, r#""café ✓""#),
        (r#""café ✓""#, r#""café""#),
        (r#""a\"b""#, r#""a\"b""#),
        (r#""a\"b""#, r#""a\"""#),
        (r#""a\"""#, r#""a\"b""#),
        ("1", r#""1""#),
    ];
    for (first, second) in pairs {
        for key in ["v", "other"] {
            // The same position under another key, too: positions are what match.
            let text = format!(
                r#"[{{"v":"{pad}","w":"{pad}"}},{{"v":{first},"w":{first}}},{{"{key}":{second},"w":{second}}}]"#
            );
            let reference: Json = serde_json::from_str(&text).unwrap();
            let decoded = decode(&lua, text.as_bytes()).unwrap();
            assert_eq!(
                encode_str(&lua, &decoded, false),
                serde_json::to_string(&canonical(&reference)).unwrap(),
                "{first} then {second}"
            );
        }
    }
    for truncated in [
        format!(r#"[{{"v":"abc","p":"{pad}"}},{{"v":"abc"#),
        format!(r#"[{{"v":"abc","p":"{pad}"}},{{"v":"ab"#),
    ] {
        let error = decode(&lua, truncated.as_bytes()).unwrap_err().to_string();
        assert!(
            error.contains("unterminated string"),
            "{truncated}: {error}"
        );
    }
}

/// Records that share a shape reuse the last object's key order (`KeyOrder`): every
/// way two neighbours can look alike without being alike must still sort afresh.
#[test]
fn records_of_one_shape_and_near_misses_match_the_old_serde_bridge() {
    let lua = Lua::new();
    let value: Value = lua
        .load(
            r#"local reordered = {}
            reordered.b = 1
            reordered.a = 2
            local grown = { a = 1, b = 2 }
            grown.c = 3
            grown.c = nil
            return {
                { a = 1, b = 2 }, { a = 3, b = 4 }, { b = 5, a = 6 }, reordered,
                { a = 1, c = 2 }, { c = 1, d = 2 }, { a = 1, b = 2, c = 3 }, { a = 1 },
                grown, { [1.5] = 1, x = 2 }, {}, { [true] = 1, [false] = 2 }, {},
                { x = { a = 1, b = 2 }, y = { b = 1, a = 2 } }, { b = 0, a = 0 },
                { zz = {}, a = { [2.5] = 0 } }, { a = 1, b = 2 },
                { ['q"'] = 1, ["\n"] = { k = 1 } }, { ['q"'] = 2, ["\n"] = { k = 2 } },
                { ['q"'] = 3, ["\n"] = { k = 3, l = 4 } }, { ['q"'] = 4, ["\n"] = { k = 5 } },
            }"#,
        )
        .eval()
        .unwrap();
    for pretty in [false, true] {
        let old = old_encode(&value, pretty).unwrap();
        assert_eq!(encode_str(&lua, &value, pretty), old);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arrays of records drawn from a few keys, so that shapes repeat and nearly
    /// repeat, as in API responses.
    #[test]
    fn arrays_of_records_match_the_old_serde_bridge(
        records in prop::collection::vec(
            prop::collection::vec((prop::sample::select(vec!["id", "name", "a", "b", "zz"]), 0i32..9), 0..5),
            0..12,
        )
    ) {
        let lua = Lua::new();
        let text = serde_json::to_string(&records
            .iter()
            .map(|pairs| Json::Object(pairs.iter().map(|(k, v)| (k.to_string(), Json::from(*v))).collect()))
            .collect::<Vec<_>>()).unwrap();
        let decoded = decode(&lua, text.as_bytes()).unwrap();
        let identity = lua.load("return ...").into_function().unwrap();
        let decoded: Value = identity.call(decoded).unwrap();
        for pretty in [false, true] {
            prop_assert_eq!(Some(encode_str(&lua, &decoded, pretty)), old_encode(&decoded, pretty));
        }
    }
}

/// `extend_short` appends exactly the bytes given, for every length it copies
/// without `memcpy` and past it, onto vectors of any fill and spare room.
#[test]
fn extend_short_appends_every_length_exactly() {
    let source: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
    for n in 0..=source.len() {
        for (fill, room) in [(0, 0), (1, 0), (3, 64), (7, 1)] {
            let mut out: Vec<u8> = Vec::with_capacity(fill + room);
            out.extend((0..fill).map(|i| i as u8));
            let mut expected = out.clone();
            expected.extend_from_slice(&source[..n]);
            super::encode::extend_short(&mut out, &source[..n]);
            assert_eq!(out, expected, "length {n} after {fill} bytes");
        }
    }
}

/// A JSON document as text, with what serde_json's `Value` cannot hold: repeated
/// keys, and keys in any order (and spelled with escapes).
#[derive(Debug, Clone)]
enum Doc {
    Number(i32),
    /// A string, as written between its quotes.
    Str(&'static str),
    Null,
    Object(Vec<(&'static str, Doc)>),
    Array(Vec<Doc>),
}

impl Doc {
    fn text(&self, out: &mut String) {
        match self {
            Doc::Number(n) => out.push_str(&n.to_string()),
            Doc::Str(text) => {
                out.push('"');
                out.push_str(text);
                out.push('"');
            }
            Doc::Null => out.push_str("null"),
            Doc::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&format!("\"{key}\":"));
                    value.text(out);
                }
                out.push('}');
            }
            Doc::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.text(out);
                }
                out.push(']');
            }
        }
    }
}

/// Lists of objects whose keys repeat, reorder, go missing, come twice, are null,
/// are spelled with escapes (`\u0061` is `a`), and nest deeper than the decoder
/// remembers shapes; some objects have more keys than it remembers. String values
/// repeat and nearly repeat (prefixes, escapes, one string spelled two ways).
fn doc() -> impl Strategy<Value = Doc> {
    let key = prop::sample::select(vec!["id", "a", "b", "name", "\\u0061", "zz", "k1", "k2"]);
    let text = prop::sample::select(vec![
        "",
        "a",
        "ab",
        "abc",
        "\\u0061b",
        "a\\\"",
        "a\\\\",
        "a\\\\\\\"",
        "ab\\n",
        "café",
        "caf",
    ]);
    let leaf = prop_oneof![(-5i32..5).prop_map(Doc::Number), text.prop_map(Doc::Str)];
    leaf.prop_recursive(7, 256, 40, move |inner| {
        let member = (
            key.clone(),
            prop_oneof![8 => inner.clone(), 1 => Just(Doc::Null)],
        );
        prop_oneof![
            prop::collection::vec(member.clone(), 0..6).prop_map(Doc::Object),
            prop::collection::vec(member, 30..40).prop_map(Doc::Object),
            prop::collection::vec(inner, 1..6).prop_map(Doc::Array),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Objects start from the last one at their depth (its keys and, when they were
    /// distinct, a copy of it): what is decoded is still exactly the text's object.
    #[test]
    fn objects_of_repeating_shapes_decode_as_serde_json_reads_them(
        items in prop::collection::vec(doc(), 1..12)
    ) {
        let lua = Lua::new();
        let mut text = String::new();
        Doc::Array(items).text(&mut text);
        let reference: Json = serde_json::from_str(&text).unwrap();
        let decoded = decode(&lua, text.as_bytes()).unwrap();
        prop_assert_eq!(
            encode_str(&lua, &decoded, false),
            serde_json::to_string(&canonical(&reference)).unwrap(),
            "{}", text
        );
    }
}

/// Memory a decoded value holds: Luau's count after decoding `text`, less before.
fn decoded_bytes(text: &str) -> usize {
    let lua = Lua::new();
    lua.gc_collect().unwrap();
    let before = lua.used_memory();
    let value = decode(&lua, text.as_bytes()).unwrap();
    lua.gc_collect().unwrap();
    let held = lua.used_memory() - before;
    drop(value);
    held
}

/// An object starts as a copy of the last one at its depth (same table size) only
/// when it starts like it and that one needed its size: small objects after a big
/// one, or after another shape, cost what they cost alone.
#[test]
fn small_objects_after_a_big_one_stay_small() {
    let big: Vec<String> = (0..70).map(|i| format!("\"k{i}\":{i}")).collect();
    let five = r#"{"a":1,"b":2,"c":3,"d":4,"e":5}"#;
    let cases = [
        (format!("{{{}}}", big.join(",")), r#"{"id":1}"#),
        (five.to_string(), "{}"),
        (five.to_string(), r#"{"id":1}"#),
        (five.to_string(), r#"{"a":1}"#),
    ];
    for (first, small) in cases {
        let smalls = vec![small; 2000].join(",");
        let after = decoded_bytes(&format!("[{first},{smalls}]"));
        let alone = decoded_bytes(&format!("[{first}]")) + decoded_bytes(&format!("[{smalls}]"));
        assert!(
            after <= alone + alone / 20,
            "2,000 x {small} after {first:.40}: {after} bytes, {alone} decoded apart"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Decimals of up to 15 digits without an exponent take a fast path (one
    /// division): each must be the double Rust's exact parser gives, sign included.
    #[test]
    fn short_decimals_decode_as_rusts_parser_reads_them(
        digits in 0u64..1_000_000_000_000_000,
        point in 0usize..16,
        negative in any::<bool>(),
    ) {
        let text = digits.to_string();
        let point = point.min(text.len() - 1);
        let text = if point == 0 {
            text
        } else {
            let (int, fraction) = text.split_at(text.len() - point);
            format!("{int}.{fraction}")
        };
        let text = if negative { format!("-{text}") } else { text };
        let lua = Lua::new();
        let decoded = number_of(&decode(&lua, text.as_bytes()).unwrap());
        let expected: f64 = text.parse().unwrap();
        prop_assert_eq!(decoded.to_bits(), expected.to_bits(), "{}", text);
    }
}
