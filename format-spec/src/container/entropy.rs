//! Entropy-coded payloads (SPEC.md §6.3): a tensor's decoded payload (what its codec
//! defines) stored as independent zstd frames over chunks of whole rows, behind a chunk
//! index. Decoded sizes always come from the shape and codec, never from a frame header,
//! so a frame is decoded into a buffer of exactly the size the index must state.

use std::ops::Range;

/// The codec parameter that marks a tensor's payload as entropy-coded; its string value
/// names the transform.
pub const PARAM_KEY: &str = "hct.entropy";
/// The only transform defined: zstd frames (RFC 8878).
pub const ZSTD: &str = "zstd";
/// Required-feature bit of a file with at least one entropy-coded tensor.
pub const FEATURE_ENTROPY: u32 = 1;
/// The minor version that defines the transform; files using it carry it.
pub const ENTROPY_MINOR: u16 = 1;
/// Decoded bytes per chunk, at most (a chunk is still at least one row).
pub const CHUNK_TARGET: u64 = 1 << 20;
/// The zstd level `--entropy zstd` uses when none is given.
pub const DEFAULT_LEVEL: i32 = 3;
/// Bytes of the index before its entries: the chunk count.
const COUNT_BYTES: u64 = 8;
/// Bytes per index entry: decoded length, stored length.
const ENTRY_BYTES: u64 = 16;

/// How a tensor's decoded payload is cut into chunks: whole rows, as many as fit in
/// `CHUNK_TARGET` decoded bytes, at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunking {
    pub rows: u64,
    pub row_bytes: u64,
    pub rows_per_chunk: u64,
}

impl Chunking {
    pub fn new(rows: u64, row_bytes: u64) -> Chunking {
        let rows_per_chunk = CHUNK_TARGET.checked_div(row_bytes).unwrap_or(1).max(1);
        Chunking {
            rows,
            row_bytes,
            rows_per_chunk,
        }
    }

    pub fn chunks(&self) -> u64 {
        self.rows.div_ceil(self.rows_per_chunk)
    }

    /// Rows `[first, end)` of chunk `i`.
    pub fn chunk_rows(&self, i: u64) -> Range<u64> {
        let first = i * self.rows_per_chunk;
        first..(first + self.rows_per_chunk).min(self.rows)
    }

    /// Decoded bytes of chunk `i` (the rule, not the index).
    pub fn chunk_decoded_len(&self, i: u64) -> u64 {
        let r = self.chunk_rows(i);
        (r.end - r.start) * self.row_bytes
    }

    /// The chunk holding row `row`.
    pub fn chunk_of_row(&self, row: u64) -> u64 {
        row / self.rows_per_chunk
    }
}

/// What is wrong with an entropy-coded payload; the reader adds file and tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntropyError {
    /// The index itself (payload-relative offset of the problem).
    Index { at: u64, detail: String },
    /// One frame: chunk number, payload-relative offset and stored length.
    Frame {
        chunk: u64,
        at: u64,
        stored: u64,
        detail: String,
    },
}

/// A checked view of an entropy-coded payload: the index has exactly the entries the
/// chunking rule gives, each entry's decoded length is the rule's, and the stored lengths
/// add up to the payload's remainder. Reads entries in place (no allocation sized by the
/// file).
pub struct Frames<'a> {
    payload: &'a [u8],
    chunking: Chunking,
}

impl<'a> Frames<'a> {
    pub fn parse(payload: &'a [u8], chunking: Chunking) -> Result<Frames<'a>, EntropyError> {
        let len = payload.len() as u64;
        let index_err = |at, detail: String| EntropyError::Index { at, detail };
        if len < COUNT_BYTES {
            return Err(index_err(
                0,
                format!("payload of {len} bytes is shorter than the 8-byte chunk count"),
            ));
        }
        let count = le64(payload, 0);
        let expected = chunking.chunks();
        if count != expected {
            return Err(index_err(
                0,
                format!(
                    "chunk count {count}, expected {expected} ({} rows of {} bytes, {} rows per chunk)",
                    chunking.rows, chunking.row_bytes, chunking.rows_per_chunk
                ),
            ));
        }
        let index_len = count
            .checked_mul(ENTRY_BYTES)
            .and_then(|n| n.checked_add(COUNT_BYTES))
            .filter(|&n| n <= len);
        let Some(index_len) = index_len else {
            return Err(index_err(
                COUNT_BYTES,
                format!("an index of {count} entries does not fit in the payload of {len} bytes"),
            ));
        };
        let mut stored_total = 0u64;
        for i in 0..count {
            let at = COUNT_BYTES + i * ENTRY_BYTES;
            let (decoded, stored) = (le64(payload, at), le64(payload, at + 8));
            let rule = chunking.chunk_decoded_len(i);
            if decoded != rule {
                return Err(index_err(
                    at,
                    format!(
                        "chunk {i} claims {decoded} decoded bytes, the chunk rule gives {rule}"
                    ),
                ));
            }
            stored_total = stored_total.checked_add(stored).ok_or_else(|| {
                index_err(at + 8, format!("stored lengths overflow at chunk {i}"))
            })?;
        }
        if stored_total != len - index_len {
            return Err(index_err(
                index_len,
                format!(
                    "frames take {stored_total} bytes by the index, the payload has {} after it",
                    len - index_len
                ),
            ));
        }
        Ok(Frames { payload, chunking })
    }

    pub fn chunking(&self) -> Chunking {
        self.chunking
    }

    fn index_len(&self) -> u64 {
        COUNT_BYTES + self.chunking.chunks() * ENTRY_BYTES
    }

    /// Payload-relative byte range of chunk `i`'s frame.
    pub fn frame_range(&self, i: u64) -> Range<u64> {
        let mut start = self.index_len();
        for k in 0..i {
            start += le64(self.payload, COUNT_BYTES + k * ENTRY_BYTES + 8);
        }
        start..start + le64(self.payload, COUNT_BYTES + i * ENTRY_BYTES + 8)
    }

    /// Decode chunks `[first, end)` into `out`, which must be exactly their decoded length.
    pub fn decode_chunks(&self, chunks: Range<u64>, out: &mut [u8]) -> Result<(), EntropyError> {
        let mut d = zstd::bulk::Decompressor::new().map_err(|e| EntropyError::Frame {
            chunk: chunks.start,
            at: 0,
            stored: 0,
            detail: format!("cannot start a zstd decoder: {e}"),
        })?;
        let mut range = if chunks.is_empty() {
            0..0
        } else {
            self.frame_range(chunks.start)
        };
        let mut pos = 0usize;
        for i in chunks.clone() {
            if i > chunks.start {
                let stored = le64(self.payload, COUNT_BYTES + i * ENTRY_BYTES + 8);
                range = range.end..range.end + stored;
            }
            let want = self.chunking.chunk_decoded_len(i) as usize;
            let frame = &self.payload[range.start as usize..range.end as usize];
            let frame_err = |detail: String| EntropyError::Frame {
                chunk: i,
                at: range.start,
                stored: range.end - range.start,
                detail,
            };
            let dst = out
                .get_mut(pos..pos + want)
                .expect("caller sized out to the chunks' decoded length");
            // The capacity is the rule's size: a frame that would decode to more fails here
            // instead of growing a buffer.
            let got = d.decompress_to_buffer(frame, dst).map_err(|e| {
                frame_err(format!("does not decode to the index's {want} bytes: {e}"))
            })?;
            if got != want {
                return Err(frame_err(format!(
                    "decodes to {got} bytes, the index says {want}"
                )));
            }
            pos += want;
        }
        Ok(())
    }
}

/// Encode a decoded payload (`chunking.rows` rows of `chunking.row_bytes`) as index plus
/// one zstd frame per chunk, single-threaded, no dictionary, with the frame's content
/// size and checksum flags left at the library's defaults for `level`.
pub fn encode(decoded: &[u8], chunking: Chunking, level: i32) -> std::io::Result<Vec<u8>> {
    let n = chunking.chunks();
    let mut index = Vec::with_capacity((COUNT_BYTES + n * ENTRY_BYTES) as usize);
    index.extend_from_slice(&n.to_le_bytes());
    let mut frames = Vec::new();
    let mut c = zstd::bulk::Compressor::new(level)?;
    let mut pos = 0usize;
    for i in 0..n {
        let len = chunking.chunk_decoded_len(i) as usize;
        let frame = c.compress(&decoded[pos..pos + len])?;
        index.extend_from_slice(&(len as u64).to_le_bytes());
        index.extend_from_slice(&(frame.len() as u64).to_le_bytes());
        frames.extend_from_slice(&frame);
        pos += len;
    }
    index.extend_from_slice(&frames);
    Ok(index)
}

/// Whether coding pays: stored at most 97% of decoded (SPEC.md §6.3).
pub fn pays(stored: u64, decoded: u64) -> bool {
    (stored as u128) * 100 <= (decoded as u128) * 97
}

/// Parse `zstd` or `zstd:LEVEL` (level 1 to 22).
pub fn parse_spec(s: &str) -> Result<i32, String> {
    let level = match s.split_once(':') {
        None if s == ZSTD => DEFAULT_LEVEL,
        Some((ZSTD, l)) => l
            .parse::<i32>()
            .map_err(|_| format!("zstd level {l:?} is not a number"))?,
        _ => {
            return Err(format!(
                "unknown entropy stage {s:?}: expected zstd or zstd:LEVEL"
            ))
        }
    };
    if !(1..=22).contains(&level) {
        return Err(format!("zstd level {level} is outside 1 to 22"));
    }
    Ok(level)
}

fn le64(b: &[u8], at: u64) -> u64 {
    let at = at as usize;
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
