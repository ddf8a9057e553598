//! The metadata model: typed values with exactly GGUF's value types.
//!
//! HCT uses GGUF's value type ids and encodings on purpose (SPEC.md §4), so a GGUF file's
//! key/value section survives GGUF → HCT → GGUF unchanged: every integer width, every
//! array's element type (even for empty arrays), nesting and order.
//!
//! Strings are kept as raw bytes. GGUF says strings are UTF-8, but real tokenizers have
//! been seen with stray bytes, and a round trip must not "repair" them.

use std::fmt;

/// Wire ids of value types (identical to GGUF's `gguf_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    pub fn from_u32(v: u32) -> Option<ValueType> {
        use ValueType::*;
        Some(match v {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// Encoded size of one scalar of this type; `None` for strings and arrays.
    pub fn fixed_size(self) -> Option<usize> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }

    /// The smallest number of bytes one element of this type can occupy on the wire.
    /// Parsers bound a claimed count by `remaining / min_encoded_size` before allocating.
    pub fn min_encoded_size(self) -> usize {
        match self {
            ValueType::String => 8,    // u64 length
            ValueType::Array => 4 + 8, // element type + count
            t => t.fixed_size().unwrap_or(1),
        }
    }

    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "string",
            Array => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(Vec<u8>),
    Array(Array),
}

/// A typed array. The element type is carried even when the array is empty, and nested
/// arrays carry their own element types, as in GGUF.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    String(Vec<Vec<u8>>),
    Array(Vec<Array>),
}

impl Value {
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F32(_) => ValueType::F32,
            Value::F64(_) => ValueType::F64,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
        }
    }

    /// Convenience constructor for UTF-8 strings.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into().into_bytes())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// Any integer value widened to i128 (for "is this a count/size" style reads).
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v as i128,
            Value::I8(v) => v as i128,
            Value::U16(v) => v as i128,
            Value::I16(v) => v as i128,
            Value::U32(v) => v as i128,
            Value::I32(v) => v as i128,
            Value::U64(v) => v as i128,
            Value::I64(v) => v as i128,
            _ => return None,
        })
    }

    /// Bitwise equality: like `==` but NaN payloads compare by bits, which is what a
    /// lossless round trip promises.
    pub fn bit_eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::F32(a), Value::F32(b)) => a.to_bits() == b.to_bits(),
            (Value::F64(a), Value::F64(b)) => a.to_bits() == b.to_bits(),
            (Value::Array(a), Value::Array(b)) => a.bit_eq(b),
            _ => self == other,
        }
    }
}

impl Array {
    pub fn elem_type(&self) -> ValueType {
        match self {
            Array::U8(_) => ValueType::U8,
            Array::I8(_) => ValueType::I8,
            Array::U16(_) => ValueType::U16,
            Array::I16(_) => ValueType::I16,
            Array::U32(_) => ValueType::U32,
            Array::I32(_) => ValueType::I32,
            Array::U64(_) => ValueType::U64,
            Array::I64(_) => ValueType::I64,
            Array::F32(_) => ValueType::F32,
            Array::F64(_) => ValueType::F64,
            Array::Bool(_) => ValueType::Bool,
            Array::String(_) => ValueType::String,
            Array::Array(_) => ValueType::Array,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::F64(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::Array(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty array of the given element type.
    pub fn empty(elem: ValueType) -> Array {
        match elem {
            ValueType::U8 => Array::U8(Vec::new()),
            ValueType::I8 => Array::I8(Vec::new()),
            ValueType::U16 => Array::U16(Vec::new()),
            ValueType::I16 => Array::I16(Vec::new()),
            ValueType::U32 => Array::U32(Vec::new()),
            ValueType::I32 => Array::I32(Vec::new()),
            ValueType::U64 => Array::U64(Vec::new()),
            ValueType::I64 => Array::I64(Vec::new()),
            ValueType::F32 => Array::F32(Vec::new()),
            ValueType::F64 => Array::F64(Vec::new()),
            ValueType::Bool => Array::Bool(Vec::new()),
            ValueType::String => Array::String(Vec::new()),
            ValueType::Array => Array::Array(Vec::new()),
        }
    }

    /// Element `i` as a scalar `Value` (nested arrays are cloned), for display.
    pub fn get(&self, i: usize) -> Option<Value> {
        Some(match self {
            Array::U8(v) => Value::U8(*v.get(i)?),
            Array::I8(v) => Value::I8(*v.get(i)?),
            Array::U16(v) => Value::U16(*v.get(i)?),
            Array::I16(v) => Value::I16(*v.get(i)?),
            Array::U32(v) => Value::U32(*v.get(i)?),
            Array::I32(v) => Value::I32(*v.get(i)?),
            Array::U64(v) => Value::U64(*v.get(i)?),
            Array::I64(v) => Value::I64(*v.get(i)?),
            Array::F32(v) => Value::F32(*v.get(i)?),
            Array::F64(v) => Value::F64(*v.get(i)?),
            Array::Bool(v) => Value::Bool(*v.get(i)?),
            Array::String(v) => Value::String(v.get(i)?.clone()),
            Array::Array(v) => Value::Array(v.get(i)?.clone()),
        })
    }

    pub fn bit_eq(&self, other: &Array) -> bool {
        match (self, other) {
            (Array::F32(a), Array::F32(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (Array::F64(a), Array::F64(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (Array::Array(a), Array::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.bit_eq(y))
            }
            _ => self == other,
        }
    }
}

/// An ordered list of key/value pairs. Order is part of the data (GGUF keeps it, and so
/// does HCT); keys are unique (enforced by parsers).
pub type Metadata = Vec<(String, Value)>;

/// Look a key up in an ordered metadata list.
pub fn lookup<'a>(meta: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
    meta.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Bitwise equality of two metadata lists, order included.
pub fn metadata_bit_eq(a: &[(String, Value)], b: &[(String, Value)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && va.bit_eq(vb))
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::U8(v) => write!(f, "{v}"),
            Value::I8(v) => write!(f, "{v}"),
            Value::U16(v) => write!(f, "{v}"),
            Value::I16(v) => write!(f, "{v}"),
            Value::U32(v) => write!(f, "{v}"),
            Value::I32(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::String(b) => {
                // Tokenizer files run to megabytes: show the start and the size.
                const SHOWN: usize = 96;
                if b.len() <= SHOWN {
                    write!(f, "{:?}", String::from_utf8_lossy(b))
                } else {
                    let mut cut = SHOWN;
                    while cut > 0 && (b[cut] & 0xc0) == 0x80 {
                        cut -= 1; // do not split a UTF-8 sequence
                    }
                    write!(
                        f,
                        "{:?}… ({} bytes)",
                        String::from_utf8_lossy(&b[..cut]),
                        b.len()
                    )
                }
            }
            Value::Array(a) => {
                const SHOWN: usize = 6;
                write!(f, "[{}; {}]", a.elem_type(), a.len())?;
                if !a.is_empty() {
                    f.write_str(" [")?;
                    for i in 0..a.len().min(SHOWN) {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{}", a.get(i).expect("index below len"))?;
                    }
                    if a.len() > SHOWN {
                        f.write_str(", …")?;
                    }
                    f.write_str("]")?;
                }
                Ok(())
            }
        }
    }
}

/// JSON rendering for `--json` outputs. Integers stay integers, non-finite floats become
/// strings ("nan", "inf"), non-UTF-8 strings are rendered lossily. Arrays longer than
/// `max_items` are cut and marked, so a 150k-token vocabulary does not flood a terminal.
pub fn value_to_json(v: &Value, max_items: usize) -> serde_json::Value {
    use serde_json::json;
    fn float(x: f64) -> serde_json::Value {
        if x.is_finite() {
            json!(x)
        } else {
            json!(x.to_string())
        }
    }
    match v {
        Value::U8(x) => json!(x),
        Value::I8(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::I16(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::I32(x) => json!(x),
        Value::U64(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::F32(x) => float(*x as f64),
        Value::F64(x) => float(*x),
        Value::Bool(x) => json!(x),
        Value::String(b) => json!(String::from_utf8_lossy(b)),
        Value::Array(a) => {
            let n = a.len().min(max_items);
            let items: Vec<_> = (0..n)
                .map(|i| value_to_json(&a.get(i).expect("index below len"), max_items))
                .collect();
            json!({
                "type": "array",
                "elem_type": a.elem_type().name(),
                "len": a.len(),
                "items": items,
                "truncated": a.len() > n,
            })
        }
    }
}

/// A metadata value as the JSON of [`value_to_json`] (same fields, same order), written
/// straight from the value without building a `serde_json::Value` tree: a tree costs
/// hundreds of bytes per nested array, so a hostile file of a few MB could demand GBs.
pub struct JsonView<'a> {
    pub value: &'a Value,
    pub max_items: usize,
}

impl serde::Serialize for JsonView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.value {
            Value::Array(a) => ArrayJson {
                array: a,
                max_items: self.max_items,
            }
            .serialize(s),
            scalar => value_to_json(scalar, self.max_items).serialize(s),
        }
    }
}

struct ArrayJson<'a> {
    array: &'a Array,
    max_items: usize,
}

impl serde::Serialize for ArrayJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let a = self.array;
        let n = a.len().min(self.max_items);
        // Keys in value_to_json's (sorted) order.
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("elem_type", a.elem_type().name())?;
        m.serialize_entry(
            "items",
            &ItemsJson {
                array: a,
                n,
                max_items: self.max_items,
            },
        )?;
        m.serialize_entry("len", &a.len())?;
        m.serialize_entry("truncated", &(a.len() > n))?;
        m.serialize_entry("type", "array")?;
        m.end()
    }
}

struct ItemsJson<'a> {
    array: &'a Array,
    n: usize,
    max_items: usize,
}

impl serde::Serialize for ItemsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.n))?;
        for i in 0..self.n {
            match self.array {
                Array::Array(v) => seq.serialize_element(&ArrayJson {
                    array: &v[i],
                    max_items: self.max_items,
                })?,
                Array::String(v) => seq.serialize_element(&String::from_utf8_lossy(&v[i]))?,
                // Scalars: `get` copies one number.
                a => match a.get(i) {
                    Some(v) => seq.serialize_element(&value_to_json(&v, self.max_items))?,
                    None => break,
                },
            }
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_view_writes_what_value_to_json_builds() {
        let nested = Value::Array(Array::Array(vec![
            Array::String(vec![b"a".to_vec(), vec![0xff]]),
            Array::Array(vec![Array::U16(vec![1, 2, 3]), Array::Array(vec![])]),
            Array::F32(vec![1.5, f32::NAN]),
        ]));
        for max_items in [0, 1, 2, usize::MAX] {
            for v in [&nested, &Value::F64(f64::INFINITY), &Value::string("x")] {
                let direct = serde_json::to_string(&JsonView {
                    value: v,
                    max_items,
                })
                .unwrap();
                let tree = serde_json::to_string(&value_to_json(v, max_items)).unwrap();
                assert_eq!(direct, tree);
            }
        }
    }

    #[test]
    fn value_type_ids_match_gguf() {
        for id in 0..13 {
            assert_eq!(ValueType::from_u32(id).unwrap() as u32, id);
        }
        assert!(ValueType::from_u32(13).is_none());
    }

    #[test]
    fn bit_eq_distinguishes_nan_payloads_and_signed_zero() {
        let a = Value::F32(f32::from_bits(0x7fc0_0001));
        let b = Value::F32(f32::from_bits(0x7fc0_0002));
        assert!(a.bit_eq(&a.clone()));
        assert!(!a.bit_eq(&b));
        assert!(!Value::F64(0.0).bit_eq(&Value::F64(-0.0)));
    }
}
