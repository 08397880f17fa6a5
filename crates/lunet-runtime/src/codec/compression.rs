//! Compression codecs: brotli, gzip, lz4 (frame format), zlib, zstd, and raw deflate.
//!
//! Used by `serde.compress`/`serde.decompress` and by `@lune/net` to decode request
//! bodies that arrive with a `Content-Encoding`. Everything here works on whole
//! in-memory byte slices; streaming is left to the HTTP client.

use std::io::{Read, Write};

/// A compression format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Brotli,
    Gzip,
    Lz4,
    Zlib,
    Zstd,
    /// Raw DEFLATE (no zlib header); only for HTTP's ambiguous `deflate` coding.
    Deflate,
}

impl Codec {
    /// The codec named `name` as `serde.compress` spells it.
    pub fn parse(name: &str) -> Result<Codec, String> {
        match name {
            "brotli" => Ok(Codec::Brotli),
            "gzip" => Ok(Codec::Gzip),
            "lz4" => Ok(Codec::Lz4),
            "zlib" => Ok(Codec::Zlib),
            "zstd" => Ok(Codec::Zstd),
            other => Err(format!(
                "invalid compression format '{other}': expected one of brotli, gzip, lz4, zlib, zstd"
            )),
        }
    }

    /// The codec for an HTTP `Content-Encoding` token, if it is one we decode.
    pub fn from_content_encoding(token: &str) -> Option<Codec> {
        match token.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Some(Codec::Gzip),
            "deflate" => Some(Codec::Zlib),
            "br" => Some(Codec::Brotli),
            "zstd" => Some(Codec::Zstd),
            _ => None,
        }
    }
}

/// The codings an HTTP `Content-Encoding` header lists (all its values, each a
/// comma-separated list), in the order they were applied, without `identity`. Empty
/// when the body is not encoded; `Err` names the first coding we cannot decode.
pub fn content_codings<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<Codec>, String> {
    let mut codecs = Vec::new();
    for value in values {
        let value = std::str::from_utf8(value).map_err(|_| String::from_utf8_lossy(value))?;
        for token in value.split(',').map(str::trim) {
            if token.is_empty() || token.eq_ignore_ascii_case("identity") {
                continue;
            }
            codecs.push(Codec::from_content_encoding(token).ok_or_else(|| token.to_string())?);
        }
    }
    Ok(codecs)
}

/// Undoes `codecs` (as [`content_codings`] lists them: the last applied is undone
/// first).
pub fn decompress_all(codecs: &[Codec], data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut undo = codecs.iter().rev();
    let Some(last_applied) = undo.next() else {
        return Ok(data.to_vec());
    };
    let mut decoded = decompress(*last_applied, data)?;
    for codec in undo {
        decoded = decompress(*codec, &decoded)?;
    }
    Ok(decoded)
}

/// Compresses `data`; `level` is the codec's own scale (None for its default).
pub fn compress(codec: Codec, data: &[u8], level: Option<i32>) -> std::io::Result<Vec<u8>> {
    match codec {
        Codec::Brotli => {
            let quality = level.unwrap_or(11).clamp(0, 11) as u32;
            let mut out = Vec::new();
            {
                let mut writer = brotli::CompressorWriter::new(&mut out, 4096, quality, 22);
                writer.write_all(data)?;
            }
            Ok(out)
        }
        Codec::Gzip => {
            let level = flate_level(level);
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
            encoder.write_all(data)?;
            encoder.finish()
        }
        Codec::Zlib => {
            let level = flate_level(level);
            let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), level);
            encoder.write_all(data)?;
            encoder.finish()
        }
        Codec::Deflate => {
            let level = flate_level(level);
            let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), level);
            encoder.write_all(data)?;
            encoder.finish()
        }
        Codec::Zstd => zstd::encode_all(data, level.unwrap_or(3).clamp(1, 22)),
        Codec::Lz4 => {
            let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
            encoder.write_all(data)?;
            encoder.finish().map_err(std::io::Error::other)
        }
    }
}

fn flate_level(level: Option<i32>) -> flate2::Compression {
    flate2::Compression::new(level.unwrap_or(6).clamp(0, 9) as u32)
}

/// The most bytes one Luau string may hold (1 GiB): anything a library reads or
/// decodes for a script to receive as one string stops here.
pub const MAX_STRING_LEN: usize = 1 << 30;

/// Reads `reader` to its end, failing once it would pass [`MAX_STRING_LEN`] (a
/// decompression bomb or an endless file never makes us allocate past it); that
/// error's kind is `FileTooLarge`.
pub fn read_to_end_bounded(mut reader: impl Read) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    (&mut reader)
        .take(MAX_STRING_LEN as u64 + 1)
        .read_to_end(&mut out)?;
    if out.len() > MAX_STRING_LEN {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            "the data is larger than 1 GiB, the most a Luau string can hold",
        ));
    }
    Ok(out)
}

/// Decompresses `data`, to at most [`MAX_STRING_LEN`] bytes. `Zlib` also accepts
/// raw DEFLATE, as HTTP clients must.
pub fn decompress(codec: Codec, data: &[u8]) -> std::io::Result<Vec<u8>> {
    match codec {
        Codec::Brotli => read_to_end_bounded(brotli::Decompressor::new(data, 4096)),
        Codec::Gzip => read_to_end_bounded(flate2::read::MultiGzDecoder::new(data)),
        // Not zlib (a decoding error): raw DEFLATE. Past the size limit it is the
        // limit that is reported, without decoding the bomb a second time.
        Codec::Zlib => read_to_end_bounded(flate2::read::ZlibDecoder::new(data)).or_else(|e| {
            if e.kind() == std::io::ErrorKind::FileTooLarge {
                return Err(e);
            }
            read_to_end_bounded(flate2::read::DeflateDecoder::new(data))
        }),
        Codec::Deflate => read_to_end_bounded(flate2::read::DeflateDecoder::new(data)),
        Codec::Zstd => read_to_end_bounded(zstd::stream::read::Decoder::new(data)?),
        Codec::Lz4 => read_to_end_bounded(lz4_flex::frame::FrameDecoder::new(data)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_encoding_lists_are_parsed_in_order() {
        let values: [&[u8]; 2] = [b"gzip, identity", b" BR ,zstd"];
        assert_eq!(
            content_codings(values),
            Ok(vec![Codec::Gzip, Codec::Brotli, Codec::Zstd])
        );
        assert_eq!(content_codings([&b"identity"[..]]), Ok(vec![]));
        assert_eq!(
            content_codings([&b"gzip, compress"[..]]),
            Err("compress".to_string())
        );
        let text = b"stacked codings, stacked codings";
        let gzipped = compress(Codec::Gzip, text, None).unwrap();
        let both = compress(Codec::Zstd, &gzipped, None).unwrap();
        assert_eq!(
            decompress_all(&[Codec::Gzip, Codec::Zstd], &both).unwrap(),
            text
        );
    }

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for codec in [
            Codec::Brotli,
            Codec::Gzip,
            Codec::Lz4,
            Codec::Zlib,
            Codec::Zstd,
            Codec::Deflate,
        ] {
            let packed = compress(codec, &data, None).unwrap();
            assert_ne!(packed, data, "{codec:?} should change the data");
            assert_eq!(
                decompress(codec, &packed).unwrap(),
                data,
                "{codec:?} round trip"
            );
        }
    }

    #[test]
    fn zlib_also_reads_raw_deflate() {
        // What servers send as `Content-Encoding: deflate` is often raw DEFLATE.
        let data = b"raw deflate, not zlib".repeat(20);
        let raw = compress(Codec::Deflate, &data, None).unwrap();
        assert_eq!(decompress(Codec::Zlib, &raw).unwrap(), data);
    }

    #[test]
    fn corrupt_input_is_an_error() {
        for codec in [Codec::Gzip, Codec::Zstd, Codec::Lz4, Codec::Brotli] {
            assert!(
                decompress(codec, b"definitely not compressed").is_err(),
                "{codec:?}"
            );
        }
    }
}
