//! Encoding Luau values to JSON, JSONC, YAML and TOML text, and decoding them back.
//!
//! JSON and JSONC go straight between Luau values and bytes ([`super::json`]). YAML
//! and TOML go through mlua's serde bridge with keys sorted (stable output). Every
//! format gives clear errors for values it cannot hold (functions, cycles).
//! Decoding produces plain tables: JSON `null` becomes `nil`, arrays carry no
//! metatable. JSONC decodes like JSON after comments and trailing commas are removed.

use mlua::serde::SerializeOptions;
use mlua::{Error, Lua, LuaSerdeExt, Result, Value};

use lunet_runtime::codec::jsonc;

use super::json;

/// A text format `serde.encode`/`serde.decode` understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Jsonc,
    Yaml,
    Toml,
}

impl Format {
    pub fn parse(name: &str) -> Result<Format> {
        match name {
            "json" => Ok(Format::Json),
            "jsonc" => Ok(Format::Jsonc),
            "yaml" => Ok(Format::Yaml),
            "toml" => Ok(Format::Toml),
            other => Err(Error::runtime(format!(
                "invalid encoding format '{other}': expected one of json, jsonc, yaml, toml"
            ))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Jsonc => "jsonc",
            Format::Yaml => "yaml",
            Format::Toml => "toml",
        }
    }
}

fn fail(format: Format, action: &str, error: impl std::fmt::Display) -> Error {
    Error::runtime(format!("failed to {action} {}: {error}", format.name()))
}

/// Encodes `value` as `format` text; `pretty` indents JSON and TOML.
pub fn encode(lua: &Lua, format: Format, value: &Value, pretty: bool) -> Result<mlua::LuaString> {
    let serializable = value.to_serializable().sort_keys(true);
    let text = match format {
        Format::Json | Format::Jsonc => {
            let bytes =
                json::encode::encode(lua, value, pretty).map_err(|e| fail(format, "encode", e))?;
            return lua.create_string(bytes);
        }
        Format::Yaml => {
            serde_saphyr::to_string(&serializable).map_err(|e| fail(format, "encode", e))
        }
        Format::Toml => if pretty {
            toml::to_string_pretty(&serializable)
        } else {
            toml::to_string(&serializable)
        }
        .map_err(|e| fail(format, "encode", e)),
    }?;
    lua.create_string(text)
}

fn options() -> SerializeOptions {
    SerializeOptions::new()
        .set_array_metatable(false)
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false)
}

/// Decodes `format` text into a Luau value.
pub fn decode(lua: &Lua, format: Format, bytes: &[u8]) -> Result<Value> {
    match format {
        Format::Json => json::decode::decode(lua, bytes).map_err(|e| fail(format, "decode", e)),
        Format::Jsonc => {
            let text = std::str::from_utf8(bytes).map_err(|e| fail(format, "decode", e))?;
            json::decode::decode(lua, jsonc::strip(text).as_bytes())
                .map_err(|e| fail(format, "decode", e))
        }
        Format::Yaml => {
            let text = std::str::from_utf8(bytes).map_err(|e| fail(format, "decode", e))?;
            let value: serde_json::Value =
                serde_saphyr::from_str(text).map_err(|e| fail(format, "decode", e))?;
            lua.to_value_with(&value, options())
        }
        Format::Toml => {
            let text = std::str::from_utf8(bytes).map_err(|e| fail(format, "decode", e))?;
            let value: toml::Value = toml::from_str(text).map_err(|e| fail(format, "decode", e))?;
            lua.to_value_with(&value, options())
        }
    }
}
