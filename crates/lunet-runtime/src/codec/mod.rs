//! Byte codecs that more than one library needs: [`compression`] (serde's
//! `compress`/`decompress`, and HTTP bodies' `Content-Encoding` in `@lune/net`) and
//! [`jsonc`] (`.luaurc` files for `require`, and `serde.decode("jsonc", ...)`).
//! Libraries own their script-facing functions; this module only owns the bytes.

pub mod compression;
pub mod jsonc;
