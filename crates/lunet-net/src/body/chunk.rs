//! A piece of a body that a Luau function produced, as hyper sends it: the bytes of
//! the Luau string the function returned, lent to hyper without a copy, or bytes
//! Rust owns.
//!
//! A streamed response is a run of such pieces (64 KiB each in the usual file or
//! proxy loop), and copying each out of its Luau string before the kernel copies it
//! again costs more than the rest of the chunk's way (bench/README.md, run T: raw
//! hyper serving fresh copies of its block runs at a third of its speed with one
//! shared block). [`Chunk::Luau`] holds mlua's [`BorrowedBytes`], which keeps the
//! string referenced (so the collector keeps it, and Luau strings never change or
//! move) and the VM alive: the bytes stay valid, in safe code, until hyper drops the
//! chunk. `BorrowedBytes` is not `Send`, so neither is a chunk: it stays on its VM's
//! thread, where the server's connections run, and is released there. A Luau
//! `buffer` can change after the function returns it, so its bytes are copied.
//!
//! Owns: the chunk type and its [`Buf`] implementation. Does not own: which bodies
//! use it (the server's responses; the client copies, because hyper's HTTP/2 client
//! wants `Send` data) or the check of what a function returned (`producer`).

use bytes::{Buf, Bytes};
use mlua::{BorrowedBytes, Value};

use lunet_runtime::args;

/// See the module documentation.
pub(crate) enum Chunk {
    /// Bytes Rust owns (a copied buffer, a whole body).
    Owned(Bytes),
    /// A Luau string's bytes from `at` on.
    Luau { bytes: BorrowedBytes, at: usize },
}

impl Chunk {
    /// The chunk a body function returned: a string lent as it is, a buffer copied;
    /// anything else is an error naming `field`.
    pub(crate) fn from_value(value: &Value, field: &str) -> mlua::Result<Chunk> {
        match value {
            Value::String(s) => Ok(Chunk::Luau {
                bytes: s.as_bytes(),
                at: 0,
            }),
            other => args::bytes(other, field).map(Chunk::Owned),
        }
    }

    /// The bytes left, owned (copied out of a Luau string), for a body that must
    /// be `Send`.
    pub(crate) fn into_bytes(self) -> Bytes {
        match self {
            Chunk::Owned(bytes) => bytes,
            Chunk::Luau { bytes, at } => Bytes::copy_from_slice(&bytes[at..]),
        }
    }
}

impl From<Bytes> for Chunk {
    fn from(bytes: Bytes) -> Chunk {
        Chunk::Owned(bytes)
    }
}

impl Buf for Chunk {
    fn remaining(&self) -> usize {
        match self {
            Chunk::Owned(bytes) => bytes.len(),
            Chunk::Luau { bytes, at } => bytes.len() - at,
        }
    }

    fn chunk(&self) -> &[u8] {
        match self {
            Chunk::Owned(bytes) => bytes,
            Chunk::Luau { bytes, at } => &bytes[*at..],
        }
    }

    fn advance(&mut self, count: usize) {
        match self {
            Chunk::Owned(bytes) => bytes.advance(count),
            Chunk::Luau { bytes, at } => {
                assert!(
                    count <= bytes.len() - *at,
                    "advanced {count} bytes past the {} left",
                    bytes.len() - *at
                );
                *at += count;
            }
        }
    }

    fn copy_to_bytes(&mut self, len: usize) -> Bytes {
        match self {
            // Bytes splits itself without copying.
            Chunk::Owned(bytes) => bytes.copy_to_bytes(len),
            Chunk::Luau { .. } => {
                assert!(len <= self.remaining(), "copy_to_bytes past the end");
                let copied = Bytes::copy_from_slice(&self.chunk()[..len]);
                self.advance(len);
                copied
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::Lua;

    #[test]
    fn a_string_is_lent_not_copied() {
        let lua = Lua::new();
        let string = lua.create_string("hello, world").unwrap();
        let chunk = Chunk::from_value(&Value::String(string.clone()), "body chunk").unwrap();
        assert!(matches!(chunk, Chunk::Luau { .. }));
        // The very bytes Luau holds, not a copy of them.
        assert_eq!(chunk.chunk().as_ptr(), string.as_bytes().as_ptr());
        assert_eq!(chunk.chunk(), b"hello, world");
    }

    #[test]
    fn a_lent_string_outlives_every_other_reference() {
        let lua = Lua::new();
        let chunk = {
            let value: Value = lua.load("return string.rep('ab', 5000)").eval().unwrap();
            Chunk::from_value(&value, "body chunk").unwrap()
        };
        lua.gc_collect().unwrap();
        lua.gc_collect().unwrap();
        // Churn the allocator: a freed string's memory would be reused here.
        lua.load("local t = {} for i = 1, 2000 do t[i] = string.rep(tostring(i), 50) end")
            .exec()
            .unwrap();
        assert_eq!(chunk.remaining(), 10_000);
        assert!(chunk.chunk().chunks(2).all(|pair| pair == b"ab"));
        // The VM may go before the chunk: the chunk keeps it.
        drop(lua);
        assert_eq!(chunk.into_bytes().len(), 10_000);
    }

    #[test]
    fn a_buffer_is_copied() {
        let lua = Lua::new();
        let buffer = lua.create_buffer(b"data").unwrap();
        let chunk = Chunk::from_value(&Value::Buffer(buffer.clone()), "body chunk").unwrap();
        buffer.write_bytes(0, b"DATA");
        assert!(matches!(chunk, Chunk::Owned(_)));
        assert_eq!(chunk.chunk(), b"data");
    }

    #[test]
    fn other_values_are_errors_naming_the_field() {
        let error = match Chunk::from_value(&Value::Boolean(true), "body chunk") {
            Err(error) => error.to_string(),
            Ok(_) => panic!("a boolean made a chunk"),
        };
        assert!(
            error.contains("Invalid body chunk - expected string or buffer, got boolean"),
            "{error}"
        );
    }

    #[test]
    fn reads_as_a_buf() {
        let lua = Lua::new();
        let string = lua.create_string("0123456789").unwrap();
        for mut chunk in [
            Chunk::from_value(&Value::String(string), "c").unwrap(),
            Chunk::from(Bytes::from_static(b"0123456789")),
        ] {
            chunk.advance(2);
            assert_eq!(chunk.remaining(), 8);
            assert_eq!(chunk.copy_to_bytes(3), Bytes::from_static(b"234"));
            assert_eq!(chunk.chunk(), b"56789");
            assert_eq!(chunk.into_bytes(), Bytes::from_static(b"56789"));
        }
    }

    #[test]
    #[should_panic(expected = "past the")]
    fn advancing_past_the_end_panics() {
        let lua = Lua::new();
        let string = lua.create_string("abc").unwrap();
        let mut chunk = Chunk::from_value(&Value::String(string), "c").unwrap();
        chunk.advance(4);
    }
}
