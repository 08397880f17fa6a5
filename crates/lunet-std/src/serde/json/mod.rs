//! JSON for `serde.encode`/`serde.decode` ("json", and "jsonc" after its comments are
//! stripped): straight between Luau values and bytes.
//!
//! [`encode`] walks the Luau value writing JSON into a `Vec<u8>`; [`decode`] parses
//! bytes into Luau tables and strings as it reads. Neither builds a
//! `serde_json::Value`. This module owns the JSON rules only; format names, the
//! "failed to encode json: ..." wrapping and the other formats are in
//! [`super::encoding`].

pub(crate) mod decode;
pub(crate) mod encode;
mod shape;

#[cfg(test)]
mod tests;
