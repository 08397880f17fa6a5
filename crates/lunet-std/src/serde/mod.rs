//! `@lune/serde`: text formats, compression and hashing for scripts.
//!
//! `encode(format, value, pretty?)` / `decode(format, string|buffer)` for json, jsonc,
//! yaml and toml ([`encoding`]); `compress(format, data, level?)` /
//! `decompress(format, data)` for brotli, gzip, lz4, zlib and zstd ([`compression`]);
//! `hash(algorithm, message)` / `hmac(algorithm, message, secret)` ([`hashing`]).
//! Every bad argument is a Luau error naming what was expected.

mod encoding;
mod hashing;
mod json;

use bytes::Bytes;
use lunet_runtime::args;
use lunet_runtime::codec::compression;
use mlua::{Error, Lua, Result, Value};

fn string_arg(value: &Value, field: &str) -> Result<String> {
    args::string(value, field).map(|s| s.to_string_lossy())
}

fn bytes_arg(value: &Value, field: &str) -> Result<Bytes> {
    args::bytes(value, field)
}

pub fn create(lua: &Lua) -> Result<Value> {
    let serde = lua.create_table()?;
    serde.set(
        "encode",
        lunet_runtime::create_function(
            lua,
            |lua, (format, value, pretty): (Value, Value, Option<bool>)| {
                let format = encoding::Format::parse(&string_arg(&format, "format")?)?;
                encoding::encode(lua, format, &value, pretty.unwrap_or(false))
            },
        )?,
    )?;
    serde.set(
        "decode",
        lunet_runtime::create_function(lua, |lua, (format, data): (Value, Value)| {
            let format = encoding::Format::parse(&string_arg(&format, "format")?)?;
            let bytes = bytes_arg(&data, "encoded data")?;
            encoding::decode(lua, format, &bytes)
        })?,
    )?;
    serde.set(
        "compress",
        lunet_runtime::create_function(
            lua,
            |lua, (format, data, level): (Value, Value, Option<i32>)| {
                let name = string_arg(&format, "compression format")?;
                let codec = compression::Codec::parse(&name).map_err(Error::runtime)?;
                let bytes = bytes_arg(&data, "data to compress")?;
                let packed = compression::compress(codec, &bytes, level)
                    .map_err(|e| Error::runtime(format!("failed to compress with {name}: {e}")))?;
                lua.create_string(packed)
            },
        )?,
    )?;
    serde.set(
        "decompress",
        lunet_runtime::create_function(lua, |lua, (format, data): (Value, Value)| {
            let name = string_arg(&format, "compression format")?;
            let codec = compression::Codec::parse(&name).map_err(Error::runtime)?;
            let bytes = bytes_arg(&data, "data to decompress")?;
            let plain = compression::decompress(codec, &bytes)
                .map_err(|e| Error::runtime(format!("failed to decompress {name} data: {e}")))?;
            lua.create_string(plain)
        })?,
    )?;
    serde.set(
        "hash",
        lunet_runtime::create_function(lua, |_, (algorithm, message): (Value, Value)| {
            let algorithm = string_arg(&algorithm, "hash algorithm")?;
            let message = bytes_arg(&message, "message to hash")?;
            hashing::hash(&algorithm, &message).map_err(Error::runtime)
        })?,
    )?;
    serde.set(
        "hmac",
        lunet_runtime::create_function(
            lua,
            |_, (algorithm, message, secret): (Value, Value, Value)| {
                let algorithm = string_arg(&algorithm, "hash algorithm")?;
                let message = bytes_arg(&message, "message to hash")?;
                let secret = bytes_arg(&secret, "secret")?;
                hashing::hmac(&algorithm, &message, &secret).map_err(Error::runtime)
            },
        )?,
    )?;
    Ok(Value::Table(super::freeze(serde)))
}
