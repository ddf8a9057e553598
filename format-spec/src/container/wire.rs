//! Byte-level encoding of the header (SPEC.md §4): a bounds-checked cursor for parsing and
//! the matching encoders. Every count read from the file is bounded by the bytes left
//! before anything is allocated by it, so a header claiming a 2^60-entry array is refused
//! after reading 12 bytes, not after trying to reserve memory.

use super::error::ErrorKind;
use super::limits::MAX_ARRAY_NESTING;
use crate::value::{Array, Value, ValueType};

/// A read cursor over the header bytes. `base` is the header's file offset, so errors
/// report absolute file offsets.
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8], base: u64) -> Cursor<'a> {
        Cursor { buf, pos: 0, base }
    }

    /// Absolute file offset of the next byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], ErrorKind> {
        if n > self.remaining() as u64 {
            return Err(ErrorKind::HeaderTruncated {
                what: what(),
                offset: self.offset(),
                need: n,
                remaining: self.remaining() as u64,
            });
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], ErrorKind> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub fn u8(&mut self, what: &dyn Fn() -> String) -> Result<u8, ErrorKind> {
        Ok(self.array::<1>(what)?[0])
    }
    pub fn u16(&mut self, what: &dyn Fn() -> String) -> Result<u16, ErrorKind> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    pub fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, ErrorKind> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    pub fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, ErrorKind> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    pub fn bytes32(&mut self, what: &dyn Fn() -> String) -> Result<[u8; 32], ErrorKind> {
        self.array(what)
    }

    /// A count of elements that each take at least `min_size` bytes, bounded by what is
    /// left in the header and by `max`.
    pub fn count(
        &mut self,
        min_size: usize,
        max: u64,
        what: &dyn Fn() -> String,
    ) -> Result<u64, ErrorKind> {
        let offset = self.offset();
        let count = self.u64(what)?;
        let fits = (self.remaining() / min_size.max(1)) as u64;
        let bound = fits.min(max);
        if count > bound {
            return Err(ErrorKind::CountTooLarge {
                what: what(),
                offset,
                count,
                max: bound,
            });
        }
        Ok(count)
    }

    /// A length-prefixed byte string (u64 length), at most `max` bytes.
    pub fn string_bytes(
        &mut self,
        max: u64,
        what: &dyn Fn() -> String,
    ) -> Result<&'a [u8], ErrorKind> {
        let offset = self.offset();
        let len = self.u64(what)?;
        if len > max {
            return Err(ErrorKind::StringTooLong {
                what: what(),
                offset,
                len,
                max,
            });
        }
        self.take(len, what)
    }

    /// A length-prefixed UTF-8 string.
    pub fn string(&mut self, max: u64, what: &dyn Fn() -> String) -> Result<String, ErrorKind> {
        let offset = self.offset() + 8;
        let b = self.string_bytes(max, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| ErrorKind::InvalidUtf8 {
            what: what(),
            offset,
        })
    }

    /// A value type id.
    pub fn value_type(&mut self, what: &dyn Fn() -> String) -> Result<ValueType, ErrorKind> {
        let offset = self.offset();
        let id = self.u32(what)?;
        ValueType::from_u32(id).ok_or_else(|| ErrorKind::InvalidValueType {
            what: what(),
            offset,
            type_id: id,
        })
    }

    /// A typed value (its type id already read).
    pub fn value(&mut self, ty: ValueType, what: &dyn Fn() -> String) -> Result<Value, ErrorKind> {
        self.value_at_depth(ty, 0, what)
    }

    fn value_at_depth(
        &mut self,
        ty: ValueType,
        depth: u32,
        what: &dyn Fn() -> String,
    ) -> Result<Value, ErrorKind> {
        Ok(match ty {
            ValueType::U8 => Value::U8(self.u8(what)?),
            ValueType::I8 => Value::I8(self.u8(what)? as i8),
            ValueType::U16 => Value::U16(self.u16(what)?),
            ValueType::I16 => Value::I16(self.u16(what)? as i16),
            ValueType::U32 => Value::U32(self.u32(what)?),
            ValueType::I32 => Value::I32(self.u32(what)? as i32),
            ValueType::U64 => Value::U64(self.u64(what)?),
            ValueType::I64 => Value::I64(self.u64(what)? as i64),
            ValueType::F32 => Value::F32(f32::from_bits(self.u32(what)?)),
            ValueType::F64 => Value::F64(f64::from_bits(self.u64(what)?)),
            ValueType::Bool => Value::Bool(self.bool(what)?),
            ValueType::String => Value::String(self.string_bytes(u64::MAX, what)?.to_vec()),
            ValueType::Array => Value::Array(self.array_value(depth + 1, what)?),
        })
    }

    fn bool(&mut self, what: &dyn Fn() -> String) -> Result<bool, ErrorKind> {
        let offset = self.offset();
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            byte => Err(ErrorKind::InvalidBool {
                what: what(),
                offset,
                byte,
            }),
        }
    }

    /// An array: element type (u32), count (u64), elements. `depth` counts this array.
    fn array_value(&mut self, depth: u32, what: &dyn Fn() -> String) -> Result<Array, ErrorKind> {
        if depth > MAX_ARRAY_NESTING {
            return Err(ErrorKind::NestingTooDeep {
                what: what(),
                offset: self.offset(),
                max: MAX_ARRAY_NESTING,
            });
        }
        let elem = self.value_type(what)?;
        let n = self.count(elem.min_encoded_size(), u64::MAX, what)? as usize;
        macro_rules! fixed {
            ($variant:ident, $read:ident, $conv:expr) => {{
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push($conv(self.$read(what)?));
                }
                Array::$variant(v)
            }};
        }
        Ok(match elem {
            ValueType::U8 => Array::U8(self.take(n as u64, what)?.to_vec()),
            ValueType::I8 => fixed!(I8, u8, |x: u8| x as i8),
            ValueType::U16 => fixed!(U16, u16, |x| x),
            ValueType::I16 => fixed!(I16, u16, |x: u16| x as i16),
            ValueType::U32 => fixed!(U32, u32, |x| x),
            ValueType::I32 => fixed!(I32, u32, |x: u32| x as i32),
            ValueType::U64 => fixed!(U64, u64, |x| x),
            ValueType::I64 => fixed!(I64, u64, |x: u64| x as i64),
            ValueType::F32 => fixed!(F32, u32, f32::from_bits),
            ValueType::F64 => fixed!(F64, u64, f64::from_bits),
            ValueType::Bool => fixed!(Bool, bool, |x| x),
            ValueType::String => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.string_bytes(u64::MAX, what)?.to_vec());
                }
                Array::String(v)
            }
            ValueType::Array => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.array_value(depth + 1, what)?);
                }
                Array::Array(v)
            }
        })
    }
}

/// Appends the header encoding of values to a buffer.
pub struct Encoder {
    pub buf: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder { buf: Vec::new() }
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    pub fn string(&mut self, s: &[u8]) {
        self.u64(s.len() as u64);
        self.buf.extend_from_slice(s);
    }
    /// Type id, then value.
    pub fn typed_value(&mut self, v: &Value) {
        self.u32(v.value_type() as u32);
        self.value(v);
    }
    pub fn value(&mut self, v: &Value) {
        match v {
            Value::U8(x) => self.buf.push(*x),
            Value::I8(x) => self.buf.push(*x as u8),
            Value::U16(x) => self.bytes(&x.to_le_bytes()),
            Value::I16(x) => self.bytes(&x.to_le_bytes()),
            Value::U32(x) => self.u32(*x),
            Value::I32(x) => self.bytes(&x.to_le_bytes()),
            Value::U64(x) => self.u64(*x),
            Value::I64(x) => self.bytes(&x.to_le_bytes()),
            Value::F32(x) => self.u32(x.to_bits()),
            Value::F64(x) => self.u64(x.to_bits()),
            Value::Bool(x) => self.buf.push(*x as u8),
            Value::String(s) => self.string(s),
            Value::Array(a) => self.array(a),
        }
    }
    pub fn array(&mut self, a: &Array) {
        self.u32(a.elem_type() as u32);
        self.u64(a.len() as u64);
        macro_rules! each {
            ($v:expr, $f:expr) => {
                for x in $v {
                    $f(self, x)
                }
            };
        }
        match a {
            Array::U8(v) => self.bytes(v),
            Array::I8(v) => each!(v, |e: &mut Encoder, x: &i8| e.buf.push(*x as u8)),
            Array::U16(v) => each!(v, |e: &mut Encoder, x: &u16| e.bytes(&x.to_le_bytes())),
            Array::I16(v) => each!(v, |e: &mut Encoder, x: &i16| e.bytes(&x.to_le_bytes())),
            Array::U32(v) => each!(v, |e: &mut Encoder, x: &u32| e.u32(*x)),
            Array::I32(v) => each!(v, |e: &mut Encoder, x: &i32| e.bytes(&x.to_le_bytes())),
            Array::U64(v) => each!(v, |e: &mut Encoder, x: &u64| e.u64(*x)),
            Array::I64(v) => each!(v, |e: &mut Encoder, x: &i64| e.bytes(&x.to_le_bytes())),
            Array::F32(v) => each!(v, |e: &mut Encoder, x: &f32| e.u32(x.to_bits())),
            Array::F64(v) => each!(v, |e: &mut Encoder, x: &f64| e.u64(x.to_bits())),
            Array::Bool(v) => each!(v, |e: &mut Encoder, x: &bool| e.buf.push(*x as u8)),
            Array::String(v) => each!(v, |e: &mut Encoder, x: &Vec<u8>| e.string(x)),
            Array::Array(v) => each!(v, |e: &mut Encoder, x: &Array| e.array(x)),
        }
    }
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}
