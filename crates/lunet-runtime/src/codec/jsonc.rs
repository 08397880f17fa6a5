//! JSON with comments and trailing commas (JSONC), as `.luaurc` files and
//! `serde.decode("jsonc", ...)` accept it.
//!
//! [`strip`] blanks out `//` and `/* */` comments and drops commas that stand before
//! a closing `}` or `]`, leaving string contents untouched, so the result is plain
//! JSON with the same line and column positions for error messages.

/// Plain JSON from JSONC text (positions preserved except for removed commas).
pub fn strip(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            out.push(b);
            if b == b'\\' && i + 1 < bytes.len() {
                out.push(bytes[i + 1]);
                i += 2;
                continue;
            }
            if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                out.push(b);
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    out.push(b' ');
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                out.extend_from_slice(b"  ");
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    out.push(if bytes[i] == b'\n' { b'\n' } else { b' ' });
                    i += 1;
                }
                if i < bytes.len() {
                    out.extend_from_slice(b"  ");
                    i += 2;
                }
            }
            b']' | b'}' => {
                // Drop a trailing comma before this closer (skipping whitespace).
                let mut j = out.len();
                while j > 0 && out[j - 1].is_ascii_whitespace() {
                    j -= 1;
                }
                if j > 0 && out[j - 1] == b',' {
                    out[j - 1] = b' ';
                }
                out.push(b);
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    // Only ASCII bytes were replaced by ASCII bytes, so UTF-8 is preserved.
    String::from_utf8(out).unwrap_or_default()
}

/// Parses JSONC text.
pub fn from_str(input: &str) -> serde_json::Result<serde_json::Value> {
    serde_json::from_str(&strip(input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_comments_and_trailing_commas() {
        let text = "{\n // c\n \"a\": [1, 2,], /* x */ \"b\": \"//not a comment\",\n}";
        let value = from_str(text).unwrap();
        assert_eq!(value["a"], serde_json::json!([1, 2]));
        assert_eq!(value["b"], "//not a comment");
    }

    #[test]
    fn keeps_escaped_quotes_in_strings() {
        let value = from_str(r#"{"a": "x\"//y"}"#).unwrap();
        assert_eq!(value["a"], "x\"//y");
    }
}
