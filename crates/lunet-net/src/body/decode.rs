//! [`read_decoded`]: reads an HTTP body (hyper's `Incoming`, or any
//! [`Body`] of [`Bytes`]) and undoes its content codings while it arrives, within a
//! limit on both the bytes received and the bytes decoded.
//!
//! Owns: the streaming decoder chain (gzip with any number of members, HTTP's
//! ambiguous `deflate` as zlib or raw DEFLATE, br, zstd with at most an 8 MiB window
//! as RFC 9659 allows), the two limits, the output buffer that grows only as far as
//! the limit, the yields that keep a body already in memory from holding the event
//! loop, and telling a body that is too large from one that does not match its coding
//! and from one that could not be read. Does not own: which limit applies, parsing
//! `Content-Encoding` (the caller passes the codings), or what becomes of an error.
//!
//! Memory: the output never holds more than the limit; besides it, the decoders hold
//! their windows (32 KiB for gzip and deflate, at most 16 MiB for brotli, 8 MiB for
//! zstd) and a few 8 KiB buffers, plus one 64 KiB read buffer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use async_compression::tokio::bufread::{
    BrotliDecoder, DeflateDecoder, GzipDecoder, ZlibDecoder, ZstdDecoder,
};
use async_compression::zstd::DParameter;
use bytes::{Buf, Bytes};
use hyper::body::Body;
use lunet_runtime::codec::compression::Codec;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader, ReadBuf};

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Decoded (or, without codings, received) bytes after which reading yields to the
/// event loop once; also the received bytes after which the raw reader yields.
const YIELD_EVERY: usize = 1024 * 1024;
/// How much decoded output is pulled at a time.
const READ_CHUNK: usize = 64 * 1024;
/// The largest zstd window accepted: 8 MiB, the most RFC 9659 asks HTTP decoders to
/// support (zstd's own default would let a frame make us allocate 128 MiB).
const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The received or the decoded body would pass the limit.
    TooLarge,
    /// The bytes do not match the content coding (or end before it does).
    Corrupt(io::Error),
    /// Reading the body failed (the peer vanished, a malformed chunk, ...).
    Read(BoxError),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge => f.write_str("the body is larger than the limit"),
            BodyError::Corrupt(error) => write!(f, "{error}"),
            BodyError::Read(error) => write!(f, "{error}"),
        }
    }
}

/// Reads `body` whole, undoing `codecs` (in the order they were applied, as
/// `content_codings` lists them), with neither the bytes received nor the decoded
/// bytes allowed past `limit`. An empty body is returned empty whatever its codings
/// say (a response to HEAD, a 204).
pub(crate) async fn read_decoded<B>(
    body: B,
    codecs: &[Codec],
    limit: usize,
) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    read_measured(body, codecs, limit, &mut Measure::default()).await
}

/// What a read did, for tests: the largest output buffer it held and how often it
/// yielded because of decoded output.
#[derive(Debug, Default)]
pub(crate) struct Measure {
    pub(crate) peak_capacity: usize,
    pub(crate) yields: usize,
}

async fn read_measured<B>(
    body: B,
    codecs: &[Codec],
    limit: usize,
    measure: &mut Measure,
) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    if codecs.is_empty() {
        return read_plain(body, limit).await;
    }
    let mut raw = Raw::new(body, limit);
    if raw.fill_buf().await.map_err(classify)?.is_empty() {
        return Ok(Bytes::new());
    }
    let mut reader: Reader<'_> = Box::new(raw);
    for codec in codecs.iter().rev() {
        reader = undo(reader, *codec).await.map_err(classify)?;
    }
    let mut output = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut since_yield = 0;
    loop {
        let n = reader.read(&mut chunk).await.map_err(classify)?;
        if n == 0 {
            return Ok(Bytes::from(output));
        }
        if n > limit - output.len() {
            return Err(BodyError::TooLarge);
        }
        if output.len() + n > output.capacity() {
            // Double, as Vec would, but never past the limit.
            let wanted = (output.capacity() * 2)
                .max(output.len() + n)
                .max(READ_CHUNK)
                .min(limit);
            output.reserve_exact(wanted - output.len());
        }
        output.extend_from_slice(&chunk[..n]);
        measure.peak_capacity = measure.peak_capacity.max(output.capacity());
        since_yield += n;
        if since_yield >= YIELD_EVERY {
            // Decoders over bytes already received never wait, so without this a
            // bomb would decode to the limit in one go while others wait.
            since_yield = 0;
            measure.yields += 1;
            tokio::task::yield_now().await;
        }
    }
}

type Reader<'a> = Box<dyn AsyncBufRead + Unpin + 'a>;

/// A body decoded as its reader asks for it, for `BodyStream`: nothing is read from
/// the body until [`Decoder::next`] is called, and each call decodes at most
/// [`READ_CHUNK`] bytes, so what is held ahead of the reader is the body's own
/// buffering plus the decoders' windows. There is no limit on the total (a stream may
/// run forever); a reader that gathers the whole body applies its own.
///
/// Cancel-safe: a `next` whose future is dropped loses nothing; setting up the
/// decoders (which may read a byte or two to sniff zlib) is kept in progress across
/// calls.
pub(crate) struct Decoder {
    state: DecoderState,
    chunk: Vec<u8>,
}

type Starting =
    Pin<Box<dyn std::future::Future<Output = Result<Option<Reader<'static>>, BodyError>>>>;

enum DecoderState {
    Starting(Starting),
    Reading(Reader<'static>),
    Ended,
}

impl Decoder {
    /// A decoder of `body` undoing `codecs` (in the order they were applied).
    pub(crate) fn new<B>(body: B, codecs: Vec<Codec>) -> Decoder
    where
        B: Body<Data = Bytes> + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let start = async move {
            let mut raw = Raw::new(body, usize::MAX);
            if raw.fill_buf().await.map_err(classify)?.is_empty() {
                return Ok(None);
            }
            let mut reader: Reader<'static> = Box::new(raw);
            for codec in codecs.iter().rev() {
                reader = undo(reader, *codec).await.map_err(classify)?;
            }
            Ok(Some(reader))
        };
        Decoder {
            state: DecoderState::Starting(Box::pin(start)),
            chunk: Vec::new(),
        }
    }

    /// The next decoded bytes (as soon as there are any, at most 64 KiB), or `None`
    /// at the end of the body. After an error, the body counts as ended.
    pub(crate) async fn next(&mut self) -> Result<Option<&[u8]>, BodyError> {
        loop {
            match &mut self.state {
                DecoderState::Starting(start) => match start.as_mut().await {
                    Ok(Some(reader)) => self.state = DecoderState::Reading(reader),
                    Ok(None) => self.state = DecoderState::Ended,
                    Err(error) => {
                        self.state = DecoderState::Ended;
                        return Err(error);
                    }
                },
                DecoderState::Reading(reader) => {
                    if self.chunk.len() < READ_CHUNK {
                        self.chunk.resize(READ_CHUNK, 0);
                    }
                    match reader.read(&mut self.chunk).await {
                        Ok(0) => self.state = DecoderState::Ended,
                        Ok(n) => return Ok(Some(&self.chunk[..n])),
                        Err(error) => {
                            self.state = DecoderState::Ended;
                            return Err(classify(error));
                        }
                    }
                }
                DecoderState::Ended => return Ok(None),
            }
        }
    }
}

/// `reader` with `codec` undone.
async fn undo<'a>(reader: Reader<'a>, codec: Codec) -> io::Result<Reader<'a>> {
    Ok(match codec {
        Codec::Gzip => {
            let mut decoder = GzipDecoder::new(reader);
            decoder.multiple_members(true);
            Box::new(BufReader::new(decoder))
        }
        Codec::Zlib => {
            // HTTP's `deflate` should be zlib, but some servers send raw DEFLATE.
            let (zlib, reader) = sniff_zlib(reader).await?;
            if zlib {
                Box::new(BufReader::new(ZlibDecoder::new(reader)))
            } else {
                Box::new(BufReader::new(DeflateDecoder::new(reader)))
            }
        }
        Codec::Deflate => Box::new(BufReader::new(DeflateDecoder::new(reader))),
        Codec::Brotli => Box::new(BufReader::new(BrotliDecoder::new(reader))),
        Codec::Zstd => {
            let params = [DParameter::window_log_max(ZSTD_WINDOW_LOG_MAX)];
            let mut decoder = ZstdDecoder::with_params(reader, &params);
            decoder.multiple_members(true);
            Box::new(BufReader::new(decoder))
        }
        Codec::Lz4 => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "lz4 is not an HTTP content coding",
            ));
        }
    })
}

/// Whether `reader` starts with a zlib header (RFC 1950: compression method 8 and a
/// header check that makes the first two bytes a multiple of 31), and the reader
/// with those bytes put back.
async fn sniff_zlib(mut reader: Reader<'_>) -> io::Result<(bool, Reader<'_>)> {
    let mut head = [0u8; 2];
    let mut filled = 0;
    while filled < head.len() {
        let n = reader.read(&mut head[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    let zlib = filled == 2
        && head[0] & 0x0F == 8
        && (u16::from(head[0]) * 256 + u16::from(head[1])) % 31 == 0;
    let prefix = io::Cursor::new(head[..filled].to_vec());
    Ok((zlib, Box::new(AsyncReadExt::chain(prefix, reader))))
}

/// The received body, past its limit.
#[derive(Debug)]
struct RawTooLarge;

impl std::fmt::Display for RawTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the received body is larger than the limit")
    }
}

impl std::error::Error for RawTooLarge {}

/// The body's own read error, carried through the decoders' `io::Error`s.
#[derive(Debug)]
struct ReadFailed(BoxError);

impl std::fmt::Display for ReadFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ReadFailed {}

/// Tells the errors of [`Raw`] apart from the decoders' own.
/// A body with no content coding: its frames gathered as they come (a body of one
/// frame, most small ones, is returned without a copy), failing once more than
/// `limit` bytes arrived, yielding every [`YIELD_EVERY`] bytes. No read buffer, no
/// decoder: this is every plain POST's path.
async fn read_plain<B>(mut body: B, limit: usize) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    use http_body_util::BodyExt;
    let mut first = Bytes::new();
    let mut gathered: Vec<u8> = Vec::new();
    let mut total = 0usize;
    let mut since_yield = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| BodyError::Read(error.into()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let len = data.len();
        if len == 0 {
            continue;
        }
        total += len;
        if total > limit {
            return Err(BodyError::TooLarge);
        }
        if first.is_empty() && gathered.is_empty() {
            first = data;
        } else {
            if gathered.is_empty() {
                gathered.reserve(first.len() + data.len());
                gathered.extend_from_slice(&first);
            }
            gathered.extend_from_slice(&data);
        }
        since_yield += len;
        if since_yield >= YIELD_EVERY {
            since_yield = 0;
            tokio::task::yield_now().await;
        }
    }
    Ok(if gathered.is_empty() {
        first
    } else {
        Bytes::from(gathered)
    })
}

fn classify(error: io::Error) -> BodyError {
    let inner = error.get_ref();
    if inner.is_some_and(|inner| inner.is::<RawTooLarge>()) {
        return BodyError::TooLarge;
    }
    if inner.is_some_and(|inner| inner.is::<ReadFailed>()) {
        if let Some(Ok(failed)) = error
            .into_inner()
            .map(|inner| inner.downcast::<ReadFailed>())
        {
            return BodyError::Read(failed.0);
        }
        unreachable!("checked to be ReadFailed above");
    }
    BodyError::Corrupt(error)
}

/// The body's data frames as an [`AsyncBufRead`], failing once more than `limit`
/// bytes arrived, and returning `Pending` once (waking itself) after each
/// [`YIELD_EVERY`] bytes, since a body already received never has to wait.
struct Raw<B> {
    body: B,
    chunk: Bytes,
    received: usize,
    since_yield: usize,
    limit: usize,
    ended: bool,
}

impl<B> Raw<B> {
    fn new(body: B, limit: usize) -> Self {
        Raw {
            body,
            chunk: Bytes::new(),
            received: 0,
            since_yield: 0,
            limit,
            ended: false,
        }
    }
}

impl<B> AsyncBufRead for Raw<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        while this.chunk.is_empty() && !this.ended {
            if this.since_yield >= YIELD_EVERY {
                this.since_yield = 0;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                None => this.ended = true,
                Some(Err(error)) => {
                    this.ended = true;
                    return Poll::Ready(Err(io::Error::other(ReadFailed(error.into()))));
                }
                Some(Ok(frame)) => {
                    // Trailers carry no body bytes.
                    if let Ok(data) = frame.into_data() {
                        this.received = this.received.saturating_add(data.len());
                        if this.received > this.limit {
                            this.ended = true;
                            return Poll::Ready(Err(io::Error::other(RawTooLarge)));
                        }
                        this.since_yield += data.len();
                        this.chunk = data;
                    }
                }
            }
        }
        Poll::Ready(Ok(&this.chunk))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().chunk.advance(amt);
    }
}

impl<B> AsyncRead for Raw<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let available = ready!(self.as_mut().poll_fill_buf(cx))?;
        let n = available.len().min(buf.remaining());
        buf.put_slice(&available[..n]);
        self.consume(n);
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};
    use hyper::body::Frame;
    use lunet_runtime::codec::compression::{compress, decompress_all};
    use proptest::prelude::*;

    const HTTP_CODECS: [Codec; 5] = [
        Codec::Gzip,
        Codec::Zlib,
        Codec::Deflate,
        Codec::Brotli,
        Codec::Zstd,
    ];

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    /// `data` with `codecs` applied in order.
    fn encode(codecs: &[Codec], data: &[u8]) -> Vec<u8> {
        let mut encoded = data.to_vec();
        for codec in codecs {
            encoded = compress(*codec, &encoded, Some(1)).unwrap();
        }
        encoded
    }

    /// A body that arrives in pieces of `piece` bytes.
    fn pieces(
        data: &[u8],
        piece: usize,
    ) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, io::Error>> + Unpin> {
        let frames: Vec<_> = data
            .chunks(piece.max(1))
            .map(|chunk| Ok(Frame::data(Bytes::copy_from_slice(chunk))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    fn read(codecs: &[Codec], encoded: &[u8], limit: usize) -> (Result<Bytes, BodyError>, Measure) {
        let mut measure = Measure::default();
        let result = block_on(read_measured(
            pieces(encoded, 1000),
            codecs,
            limit,
            &mut measure,
        ));
        (result, measure)
    }

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .map(|i| ((i % 251) ^ (i / 7)) as u8)
            .collect()
    }

    #[test]
    fn every_codec_round_trips() {
        let data = sample();
        for codec in HTTP_CODECS {
            let encoded = encode(&[codec], &data);
            let (result, _) = read(&[codec], &encoded, data.len());
            assert_eq!(result.unwrap(), data, "{codec:?}");
        }
        let (plain, _) = read(&[], &data, data.len());
        assert_eq!(plain.unwrap(), data, "no coding");
        let whole = block_on(read_decoded(
            Full::new(Bytes::from(encode(&[Codec::Brotli], &data))),
            &[Codec::Brotli],
            data.len(),
        ));
        assert_eq!(whole.unwrap(), data, "a body in one frame");
    }

    #[test]
    fn stacked_codings_are_undone_last_first() {
        let data = sample();
        let codecs = [Codec::Gzip, Codec::Zlib, Codec::Brotli, Codec::Zstd];
        let encoded = encode(&codecs, &data);
        let (result, _) = read(&codecs, &encoded, data.len());
        assert_eq!(result.unwrap(), data);
    }

    #[test]
    fn http_deflate_accepts_raw_deflate_and_gzip_many_members() {
        let data = sample();
        let raw = compress(Codec::Deflate, &data, None).unwrap();
        let (result, _) = read(&[Codec::Zlib], &raw, data.len());
        assert_eq!(result.unwrap(), data, "raw DEFLATE as `deflate`");
        let mut members = compress(Codec::Gzip, b"one, ", None).unwrap();
        members.extend(compress(Codec::Gzip, b"two", None).unwrap());
        let (result, _) = read(&[Codec::Gzip], &members, 100);
        assert_eq!(&result.unwrap()[..], b"one, two");
    }

    #[test]
    fn an_empty_body_stays_empty_whatever_its_codings() {
        let (result, _) = read(&[Codec::Gzip, Codec::Brotli], b"", 10);
        assert!(result.unwrap().is_empty());
    }

    #[test]
    fn bombs_stop_at_the_limit_without_holding_more() {
        // Not a power of two, so that a doubling buffer would not land on it.
        const LIMIT: usize = 1_000_000;
        let zeros = vec![0u8; 16 * 1024 * 1024];
        for codec in HTTP_CODECS {
            let bomb = compress(codec, &zeros, Some(9)).unwrap();
            assert!(bomb.len() < LIMIT / 4, "{codec:?} bomb is small");
            let (result, measure) = read(&[codec], &bomb, LIMIT);
            assert!(
                matches!(result, Err(BodyError::TooLarge)),
                "{codec:?}: {result:?}"
            );
            assert!(
                measure.peak_capacity <= LIMIT,
                "{codec:?} held {} bytes",
                measure.peak_capacity
            );
            assert!(measure.peak_capacity > 0, "{codec:?} decoded something");
        }
        // Exactly at the limit is fine.
        let exact = vec![0u8; LIMIT];
        for codec in HTTP_CODECS {
            let (result, measure) = read(&[codec], &encode(&[codec], &exact), LIMIT);
            assert_eq!(result.unwrap().len(), LIMIT, "{codec:?}");
            assert!(measure.peak_capacity <= LIMIT);
        }
    }

    #[test]
    fn decoding_yields_to_the_event_loop_regularly() {
        let zeros = vec![0u8; 8 * 1024 * 1024];
        let bomb = compress(Codec::Gzip, &zeros, Some(9)).unwrap();
        let (result, measure) = read(&[Codec::Gzip], &bomb, zeros.len());
        assert_eq!(result.unwrap().len(), zeros.len());
        assert!(measure.yields >= 7, "yielded {} times", measure.yields);
    }

    #[test]
    fn a_received_body_past_the_limit_is_too_large() {
        let plain = vec![7u8; 50_000];
        let (result, _) = read(&[], &plain, plain.len() - 1);
        assert!(matches!(result, Err(BodyError::TooLarge)), "{result:?}");
        let (result, _) = read(&[], &plain, plain.len());
        assert_eq!(result.unwrap().len(), plain.len(), "exactly the limit");
        // Empty gzip members: much received, nothing decoded.
        let empty = compress(Codec::Gzip, b"", None).unwrap();
        let members = empty.repeat(10_000);
        let (result, _) = read(&[Codec::Gzip], &members, members.len());
        assert!(result.unwrap().is_empty());
        let (result, _) = read(&[Codec::Gzip], &members, members.len() - 1);
        assert!(
            matches!(result, Err(BodyError::TooLarge)),
            "received bytes count against the limit too: {result:?}"
        );
    }

    #[test]
    fn corrupt_and_truncated_bodies_are_corrupt() {
        for codec in HTTP_CODECS {
            let (result, _) = read(&[codec], b"definitely not compressed data", 1000);
            assert!(
                matches!(result, Err(BodyError::Corrupt(_))),
                "{codec:?}: {result:?}"
            );
            let encoded = encode(&[codec], &sample());
            let (result, _) = read(&[codec], &encoded[..encoded.len() / 2], 1 << 20);
            assert!(
                matches!(result, Err(BodyError::Corrupt(_))),
                "truncated {codec:?}: {result:?}"
            );
        }
    }

    #[test]
    fn a_failing_body_is_a_read_error() {
        let encoded = encode(&[Codec::Gzip], &sample());
        for codecs in [&[][..], &[Codec::Gzip][..]] {
            let frames = vec![
                Ok(Frame::data(Bytes::copy_from_slice(&encoded[..100]))),
                Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "peer vanished",
                )),
            ];
            let body = StreamBody::new(futures_util::stream::iter(frames));
            let result = block_on(read_decoded(body, codecs, 1 << 20));
            match result {
                Err(BodyError::Read(error)) => {
                    assert!(error.to_string().contains("peer vanished"))
                }
                other => panic!("{codecs:?}: {other:?}"),
            }
        }
    }

    fn codec_list() -> impl Strategy<Value = Vec<Codec>> {
        proptest::collection::vec(proptest::sample::select(HTTP_CODECS.to_vec()), 0..4)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn matches_decompress_all(
            data in proptest::collection::vec(any::<u8>(), 1..4096),
            codecs in codec_list(),
            piece in 1usize..600,
        ) {
            let encoded = encode(&codecs, &data);
            let expected = decompress_all(&codecs, &encoded).unwrap();
            prop_assert_eq!(&expected, &data);
            // The limit bounds the received bytes too, and random data grows when
            // compressed.
            let limit = data.len().max(encoded.len());
            let decoded = block_on(read_decoded(pieces(&encoded, piece), &codecs, limit));
            prop_assert_eq!(&decoded.unwrap()[..], &data[..]);
            {
                let short = block_on(read_decoded(pieces(&encoded, piece), &codecs, data.len() - 1));
                prop_assert!(matches!(short, Err(BodyError::TooLarge)));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048),
            codecs in codec_list(),
            piece in 1usize..300,
            limit in 0usize..8192,
        ) {
            let result = block_on(read_decoded(pieces(&bytes, piece), &codecs, limit));
            if let Ok(decoded) = result {
                prop_assert!(decoded.len() <= limit);
            }
        }
    }
}
