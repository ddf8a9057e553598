//! The pieces of a SentencePiece model (`tokenizer.model`): text, score and type of each.
//!
//! A `tokenizer.model` is a protocol-buffers `ModelProto` whose field 1 repeats one message per
//! piece: field 1 the text, field 2 the score (a float), field 3 the type (an enum, normal when
//! absent). Everything else (trainer and normalizer settings) is skipped. This reads only the
//! wire format, so the converter needs no protobuf library; every length is checked against
//! the bytes left before anything is read or allocated by it.

use anyhow::{bail, Result};

/// A piece's type as SentencePiece defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub text: Vec<u8>,
    pub score: f32,
    pub kind: PieceType,
}

const FILE: &str = "tokenizer.model";

/// A protobuf field key: field number and wire type.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Offset of `bytes[0]` in the file, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn varint(&mut self) -> Result<u64> {
        let start = self.base + self.pos;
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.bytes.get(self.pos) else {
                bail!("{FILE}: truncated varint at offset {start}");
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        bail!("{FILE}: varint longer than 10 bytes at offset {start}")
    }

    fn take(&mut self, n: u64, what: &str) -> Result<Reader<'a>> {
        let start = self.base + self.pos;
        let left = (self.bytes.len() - self.pos) as u64;
        if n > left {
            bail!("{FILE}: {what} at offset {start} claims {n} bytes, only {left} left");
        }
        let n = n as usize;
        let r = Reader {
            bytes: &self.bytes[self.pos..self.pos + n],
            pos: 0,
            base: start,
        };
        self.pos += n;
        Ok(r)
    }

    /// Skips a field's value of `wire` type.
    fn skip(&mut self, wire: u64, field: u64) -> Result<()> {
        match wire {
            0 => {
                self.varint()?;
            }
            1 => {
                self.take(8, "a 64-bit field")?;
            }
            2 => {
                let n = self.varint()?;
                self.take(n, "a length-delimited field")?;
            }
            5 => {
                self.take(4, "a 32-bit field")?;
            }
            w => bail!(
                "{FILE}: field {field} has wire type {w} at offset {}, not a protobuf SentencePiece model",
                self.base + self.pos
            ),
        }
        Ok(())
    }
}

/// The pieces of `bytes`, a serialized SentencePiece `ModelProto`, in id order.
pub fn pieces(bytes: &[u8]) -> Result<Vec<Piece>> {
    let mut r = Reader {
        bytes,
        pos: 0,
        base: 0,
    };
    let mut out = vec![];
    while !r.at_end() {
        let key = r.varint()?;
        let (field, wire) = (key >> 3, key & 7);
        if field == 1 && wire == 2 {
            let n = r.varint()?;
            let msg = r.take(n, "a piece")?;
            out.push(piece(msg, out.len())?);
        } else {
            r.skip(wire, field)?;
        }
    }
    if out.is_empty() {
        bail!("{FILE}: no pieces (not a SentencePiece model?)");
    }
    Ok(out)
}

fn piece(mut r: Reader<'_>, id: usize) -> Result<Piece> {
    let at = r.base;
    let mut text = None;
    let mut score = 0.0f32;
    let mut kind = PieceType::Normal;
    while !r.at_end() {
        let key = r.varint()?;
        match (key >> 3, key & 7) {
            (1, 2) => {
                let n = r.varint()?;
                text = Some(r.take(n, "a piece's text")?.bytes.to_vec());
            }
            (2, 5) => {
                let b = r.take(4, "a piece's score")?.bytes;
                score = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            (3, 0) => {
                let at = r.base + r.pos;
                kind = match r.varint()? {
                    1 => PieceType::Normal,
                    2 => PieceType::Unknown,
                    3 => PieceType::Control,
                    4 => PieceType::UserDefined,
                    5 => PieceType::Unused,
                    6 => PieceType::Byte,
                    t => bail!("{FILE}: piece {id} (offset {at}) has type {t}, expected 1 to 6"),
                };
            }
            (field, wire) => r.skip(wire, field)?,
        }
    }
    let Some(text) = text else {
        bail!("{FILE}: piece {id} at offset {at} has no text");
    };
    if std::str::from_utf8(&text).is_err() {
        bail!("{FILE}: piece {id} at offset {at} is not UTF-8");
    }
    Ok(Piece { text, score, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn encode_piece(text: &str, score: f32, kind: Option<u64>) -> Vec<u8> {
        let mut m = vec![0x0a];
        varint(text.len() as u64, &mut m);
        m.extend_from_slice(text.as_bytes());
        m.push(0x15);
        m.extend_from_slice(&score.to_le_bytes());
        if let Some(k) = kind {
            m.push(0x18);
            varint(k, &mut m);
        }
        let mut out = vec![0x0a];
        varint(m.len() as u64, &mut out);
        out.extend(m);
        out
    }

    #[test]
    fn reads_pieces_and_skips_other_fields() {
        let mut model = encode_piece("<unk>", 0.0, Some(2));
        // A trainer_spec (field 2) between pieces, as real models have it after them.
        model.extend([0x12, 3, 0x08, 0x96, 0x01]);
        model.extend(encode_piece("\u{2581}the", -3.5, None));
        model.extend(encode_piece("<0x0A>", 0.0, Some(6)));
        let p = pieces(&model).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].kind, PieceType::Unknown);
        assert_eq!(p[1].text, "\u{2581}the".as_bytes());
        assert_eq!(p[1].score, -3.5);
        assert_eq!(p[1].kind, PieceType::Normal);
        assert_eq!(p[2].kind, PieceType::Byte);
    }

    #[test]
    fn refuses_truncation_and_bad_types() {
        let model = encode_piece("abc", 1.0, Some(3));
        for cut in 1..model.len() {
            assert!(pieces(&model[..cut]).is_err(), "cut at {cut}");
        }
        let bad = encode_piece("abc", 1.0, Some(9));
        let e = pieces(&bad).unwrap_err().to_string();
        assert!(e.contains("type 9"), "{e}");
        // A length far beyond the file is refused before anything is allocated.
        let e = pieces(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]).unwrap_err();
        assert!(e.to_string().contains("claims"), "{e}");
        assert!(pieces(&[]).is_err());
    }
}
