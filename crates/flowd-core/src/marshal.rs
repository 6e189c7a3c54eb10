//! The wire encoding of [`PyValue`]s between flowd and its Python processes: CPython's `marshal`
//! format, version 2 (no object references), so that Python decodes and encodes it in C with
//! `marshal.loads` / `marshal.dumps(value, 2)`.
//!
//! Decoding is strict: what comes back from a Python process that ran user code is untrusted
//! input. Only the subset below is accepted; anything else (code objects, sets, references,
//! truncated data, trailing bytes, nesting deeper than the limit, sizes past the limit) is an error.
//!
//! | type code | Python value | [`PyValue`] |
//! |---|---|---|
//! | `N` `T` `F` | None, True, False | `None`, `Bool` |
//! | `i` (i32 LE) / `l` (i32 digit count, sign = sign of count, base 2^15 u16 LE digits) | int | `Int` or `BigInt` |
//! | `g` (f64 LE) | float | `Float` |
//! | `u`, `t` (u32 len + UTF-8) | str | `Str` |
//! | `s` (u32 len + bytes) | bytes | `Bytes` |
//! | `[` / `(` (u32 count + items) | list / tuple | `List` / `Tuple` |
//! | `{` (key, value)… `0` | dict | `Dict` |
//!
//! The encoder writes `N T F i l g u s [ ( {` only.

use crate::PyValue;

/// Limits applied while decoding untrusted data.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Deepest nesting of containers accepted: a scalar at top level is depth 0, `[1]` is depth 1,
    /// `[[1]]` depth 2. The decoder recurses once per level, so keep this modest.
    pub max_depth: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits { max_depth: 64 }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MarshalError {
    #[error("truncated marshal data")]
    Truncated,
    #[error("unsupported marshal type code {0:#04x}")]
    UnsupportedType(u8),
    #[error("invalid UTF-8 in a marshalled str")]
    InvalidUtf8,
    #[error("marshal data nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("{0} trailing bytes after the marshalled value")]
    TrailingBytes(usize),
    #[error("invalid marshalled int")]
    InvalidInt,
}

/// The most base-2^15 digits accepted in a decoded `l` int: 15 360 bits, about 4 600 decimal
/// digits, just above the 4 300 decimal digits that Python itself converts to `str` by default
/// (`sys.get_int_max_str_digits()`). Longer ints are [`MarshalError::InvalidInt`]: turning them
/// into decimal text costs time quadratic in their length.
pub const MAX_BIGINT_DIGITS: usize = 1024;

const TYPE_NULL: u8 = b'0';
const TYPE_NONE: u8 = b'N';
const TYPE_TRUE: u8 = b'T';
const TYPE_FALSE: u8 = b'F';
const TYPE_INT: u8 = b'i';
const TYPE_LONG: u8 = b'l';
const TYPE_BINARY_FLOAT: u8 = b'g';
const TYPE_UNICODE: u8 = b'u';
const TYPE_INTERNED: u8 = b't';
const TYPE_STRING: u8 = b's';
const TYPE_LIST: u8 = b'[';
const TYPE_TUPLE: u8 = b'(';
const TYPE_DICT: u8 = b'{';

/// Marshal's ints of type `l` are written in base 2^15.
const DIGIT_BITS: u32 = 15;
const DIGIT_BASE: u32 = 1 << DIGIT_BITS;
const DIGIT_MASK: u64 = (DIGIT_BASE as u64) - 1;

/// Appends the marshal (version 2) encoding of `value` to `out`.
///
/// Ints are written as Python writes them: `i` when they fit in 32 bits, `l` otherwise (this
/// holds for `BigInt`s too, whatever their text). A `BigInt` whose text is not a decimal integer
/// (an optional sign then ASCII digits) cannot be an int: it is written as a `str` holding that
/// text. Strs, bytes and containers longer than 2^31 - 1 items cannot be read back by Python.
pub fn encode(value: &PyValue, out: &mut Vec<u8>) {
    match value {
        PyValue::None => out.push(TYPE_NONE),
        PyValue::Bool(true) => out.push(TYPE_TRUE),
        PyValue::Bool(false) => out.push(TYPE_FALSE),
        PyValue::Int(i) => encode_int(*i < 0, i.unsigned_abs() as u128, out),
        PyValue::BigInt(text) => match parse_decimal(text) {
            Some((negative, digits)) => encode_digits(negative, &digits, out),
            None => encode_bytes(TYPE_UNICODE, text.as_bytes(), out),
        },
        PyValue::Float(f) => {
            out.push(TYPE_BINARY_FLOAT);
            out.extend_from_slice(&f.to_le_bytes());
        }
        PyValue::Str(s) => encode_bytes(TYPE_UNICODE, s.as_bytes(), out),
        PyValue::Bytes(b) => encode_bytes(TYPE_STRING, b, out),
        PyValue::List(items) => encode_sequence(TYPE_LIST, items, out),
        PyValue::Tuple(items) => encode_sequence(TYPE_TUPLE, items, out),
        PyValue::Dict(items) => {
            out.push(TYPE_DICT);
            for (key, value) in items {
                encode(key, out);
                encode(value, out);
            }
            out.push(TYPE_NULL);
        }
    }
}

fn encode_len(len: usize, out: &mut Vec<u8>) {
    debug_assert!(len <= i32::MAX as usize, "marshal cannot carry {len} items");
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

fn encode_bytes(code: u8, bytes: &[u8], out: &mut Vec<u8>) {
    out.push(code);
    encode_len(bytes.len(), out);
    out.extend_from_slice(bytes);
}

fn encode_sequence(code: u8, items: &[PyValue], out: &mut Vec<u8>) {
    out.push(code);
    encode_len(items.len(), out);
    for item in items {
        encode(item, out);
    }
}

/// Writes the int `±magnitude`.
fn encode_int(negative: bool, magnitude: u128, out: &mut Vec<u8>) {
    let fits_i32 = if negative {
        magnitude <= 1 << 31
    } else {
        magnitude < 1 << 31
    };
    if fits_i32 {
        let value = if negative {
            (magnitude as i64).wrapping_neg()
        } else {
            magnitude as i64
        };
        out.push(TYPE_INT);
        out.extend_from_slice(&(value as i32).to_le_bytes());
        return;
    }
    let mut digits = Vec::new();
    let mut rest = magnitude;
    while rest != 0 {
        digits.push((rest & DIGIT_MASK as u128) as u16);
        rest >>= DIGIT_BITS;
    }
    write_long(negative, &digits, out);
}

/// Writes the int `±digits` (base 2^15, least significant first, normalised).
fn encode_digits(negative: bool, digits: &[u16], out: &mut Vec<u8>) {
    if digits.len() <= 8 {
        let magnitude = digits
            .iter()
            .rev()
            .fold(0u128, |acc, &d| (acc << DIGIT_BITS) | u128::from(d));
        encode_int(negative, magnitude, out);
    } else {
        write_long(negative, digits, out);
    }
}

fn write_long(negative: bool, digits: &[u16], out: &mut Vec<u8>) {
    let count = digits.len() as i32;
    out.push(TYPE_LONG);
    out.extend_from_slice(&(if negative { -count } else { count }).to_le_bytes());
    for digit in digits {
        out.extend_from_slice(&digit.to_le_bytes());
    }
}

/// `"-1234"` → (negative, base 2^15 digits least significant first, without leading zeros).
fn parse_decimal(text: &str) -> Option<(bool, Vec<u16>)> {
    let (negative, decimals) = match text.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    if decimals.is_empty() || !decimals.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut digits: Vec<u16> = Vec::new();
    for &c in decimals {
        let mut carry = u32::from(c - b'0');
        for digit in digits.iter_mut() {
            let v = u32::from(*digit) * 10 + carry;
            *digit = (v & DIGIT_MASK as u32) as u16;
            carry = v >> DIGIT_BITS;
        }
        while carry != 0 {
            digits.push((carry & DIGIT_MASK as u32) as u16);
            carry >>= DIGIT_BITS;
        }
    }
    Some((negative, digits))
}

/// Encodes `value` into a new buffer.
pub fn to_vec(value: &PyValue) -> Vec<u8> {
    let mut out = Vec::new();
    encode(value, &mut out);
    out
}

/// Decodes exactly one value that spans all of `data`.
///
/// Errors: data that ends early is [`MarshalError::Truncated`] (a length or count is checked
/// against the bytes that remain before anything is allocated for it); a type code outside the
/// table above — including one with the `FLAG_REF` bit (0x80), which version 2 never sets, and
/// a `0` (NULL) anywhere but at the end of a dict — is [`MarshalError::UnsupportedType`];
/// an `l` int with a digit ≥ 2^15, a most significant digit of 0, or more than
/// [`MAX_BIGINT_DIGITS`] digits is [`MarshalError::InvalidInt`]. Dicts are returned as written,
/// keys of any type and in order.
pub fn decode(data: &[u8], limits: DecodeLimits) -> Result<PyValue, MarshalError> {
    let mut reader = Reader {
        data,
        pos: 0,
        max_depth: limits.max_depth,
    };
    let value = reader.value(0)?;
    match data.len() - reader.pos {
        0 => Ok(value),
        trailing => Err(MarshalError::TrailingBytes(trailing)),
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    max_depth: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], MarshalError> {
        if n > self.remaining() {
            return Err(MarshalError::Truncated);
        }
        let bytes = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], MarshalError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn byte(&mut self) -> Result<u8, MarshalError> {
        Ok(self.take_array::<1>()?[0])
    }

    fn peek(&self) -> Result<u8, MarshalError> {
        self.data
            .get(self.pos)
            .copied()
            .ok_or(MarshalError::Truncated)
    }

    fn i32(&mut self) -> Result<i32, MarshalError> {
        Ok(i32::from_le_bytes(self.take_array()?))
    }

    /// A length or count: u32 LE, checked against the bytes left, at `min_bytes_each` bytes per
    /// unit, before the caller allocates anything.
    fn len(&mut self, min_bytes_each: usize) -> Result<usize, MarshalError> {
        let len = u32::from_le_bytes(self.take_array()?) as usize;
        if len.saturating_mul(min_bytes_each) > self.remaining() {
            return Err(MarshalError::Truncated);
        }
        Ok(len)
    }

    fn value(&mut self, depth: usize) -> Result<PyValue, MarshalError> {
        let code = self.byte()?;
        Ok(match code {
            TYPE_NONE => PyValue::None,
            TYPE_TRUE => PyValue::Bool(true),
            TYPE_FALSE => PyValue::Bool(false),
            TYPE_INT => PyValue::Int(i64::from(self.i32()?)),
            TYPE_LONG => self.long()?,
            TYPE_BINARY_FLOAT => PyValue::Float(f64::from_le_bytes(self.take_array()?)),
            TYPE_UNICODE | TYPE_INTERNED => {
                let len = self.len(1)?;
                let bytes = self.take(len)?;
                let text = std::str::from_utf8(bytes).map_err(|_| MarshalError::InvalidUtf8)?;
                PyValue::Str(text.to_owned())
            }
            TYPE_STRING => {
                let len = self.len(1)?;
                PyValue::Bytes(self.take(len)?.to_vec())
            }
            TYPE_LIST | TYPE_TUPLE => {
                let depth = self.enter(depth)?;
                let count = self.len(1)?;
                // Grows with the items actually read, not the declared count: the count is only
                // checked against the bytes left, and nested lists each declaring that many would
                // together reserve many times the frame's size.
                let mut items = Vec::new();
                for _ in 0..count {
                    items.push(self.value(depth)?);
                }
                if code == TYPE_LIST {
                    PyValue::List(items)
                } else {
                    PyValue::Tuple(items)
                }
            }
            TYPE_DICT => {
                let depth = self.enter(depth)?;
                let mut items = Vec::new();
                while self.peek()? != TYPE_NULL {
                    let key = self.value(depth)?;
                    let value = self.value(depth)?;
                    items.push((key, value));
                }
                self.pos += 1;
                PyValue::Dict(items)
            }
            other => return Err(MarshalError::UnsupportedType(other)),
        })
    }

    fn enter(&self, depth: usize) -> Result<usize, MarshalError> {
        if depth >= self.max_depth {
            return Err(MarshalError::TooDeep(self.max_depth));
        }
        Ok(depth + 1)
    }

    /// An `l` int: i32 digit count (its sign is the number's), then base 2^15 u16 LE digits,
    /// least significant first.
    fn long(&mut self) -> Result<PyValue, MarshalError> {
        let count = self.i32()?;
        if count == i32::MIN {
            return Err(MarshalError::InvalidInt);
        }
        let negative = count < 0;
        let size = count.unsigned_abs() as usize;
        if size.saturating_mul(2) > self.remaining() {
            return Err(MarshalError::Truncated);
        }
        let raw = self.take(size * 2)?;
        let digit = |i: usize| u16::from_le_bytes([raw[2 * i], raw[2 * i + 1]]);
        if (0..size).any(|i| u32::from(digit(i)) >= DIGIT_BASE) {
            return Err(MarshalError::InvalidInt);
        }
        if size > 0 && digit(size - 1) == 0 {
            return Err(MarshalError::InvalidInt);
        }
        if size <= 8 {
            let magnitude = (0..size)
                .rev()
                .fold(0u128, |acc, i| (acc << DIGIT_BITS) | u128::from(digit(i)));
            let value = if negative {
                -(magnitude as i128)
            } else {
                magnitude as i128
            };
            return Ok(match i64::try_from(value) {
                Ok(small) => PyValue::Int(small),
                Err(_) => PyValue::BigInt(value.to_string()),
            });
        }
        if size > MAX_BIGINT_DIGITS {
            return Err(MarshalError::InvalidInt);
        }
        // Base 10^9 limbs, least significant first.
        const LIMB: u64 = 1_000_000_000;
        let mut limbs: Vec<u64> = Vec::new();
        for i in (0..size).rev() {
            let mut carry = u64::from(digit(i));
            for limb in limbs.iter_mut() {
                let v = (*limb << DIGIT_BITS) + carry;
                *limb = v % LIMB;
                carry = v / LIMB;
            }
            while carry != 0 {
                limbs.push(carry % LIMB);
                carry /= LIMB;
            }
        }
        let mut text = String::with_capacity(limbs.len() * 9 + 1);
        if negative {
            text.push('-');
        }
        let mut limbs = limbs.iter().rev();
        if let Some(top) = limbs.next() {
            text.push_str(&top.to_string());
        }
        for limb in limbs {
            text.push_str(&format!("{limb:09}"));
        }
        Ok(PyValue::BigInt(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> PyValue {
        PyValue::Str(text.to_owned())
    }

    fn dec(data: &[u8]) -> Result<PyValue, MarshalError> {
        decode(data, DecodeLimits::default())
    }

    fn nested_lists(depth: usize) -> Vec<u8> {
        let mut data = Vec::new();
        for _ in 0..depth {
            data.extend_from_slice(b"[\x01\x00\x00\x00");
        }
        data.push(b'N');
        data
    }

    // marshal.dumps({"a": [1, 2, [3]], "b": b"\x00\xff"}, 2), CPython 3.11
    const DICT_WITH_NESTED_LIST: &[u8] = &[
        0x7b, 0x75, 0x01, 0x00, 0x00, 0x00, 0x61, 0x5b, 0x03, 0x00, 0x00, 0x00, 0x69, 0x01, 0x00,
        0x00, 0x00, 0x69, 0x02, 0x00, 0x00, 0x00, 0x5b, 0x01, 0x00, 0x00, 0x00, 0x69, 0x03, 0x00,
        0x00, 0x00, 0x75, 0x01, 0x00, 0x00, 0x00, 0x62, 0x73, 0x02, 0x00, 0x00, 0x00, 0x00, 0xff,
        0x30,
    ];

    fn dict_with_nested_list() -> PyValue {
        PyValue::Dict(vec![
            (
                s("a"),
                PyValue::List(vec![
                    PyValue::Int(1),
                    PyValue::Int(2),
                    PyValue::List(vec![PyValue::Int(3)]),
                ]),
            ),
            (s("b"), PyValue::Bytes(vec![0x00, 0xff])),
        ])
    }

    // marshal.dumps({"n": 2**70, "m": -2**70, "f": -2.5, "t": True, "z": None, "s": "héllo ✓",
    //                "l": [1, [b"\x00\xff"], (False,)], "k": 2**40, "e": {}}, 2), CPython 3.11
    const MIXED_DICT: &[u8] = &[
        0x7b, 0x75, 0x01, 0x00, 0x00, 0x00, 0x6e, 0x6c, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x75, 0x01, 0x00, 0x00, 0x00, 0x6d, 0x6c, 0xfb,
        0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x75, 0x01,
        0x00, 0x00, 0x00, 0x66, 0x67, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0xc0, 0x75, 0x01,
        0x00, 0x00, 0x00, 0x74, 0x54, 0x75, 0x01, 0x00, 0x00, 0x00, 0x7a, 0x4e, 0x75, 0x01, 0x00,
        0x00, 0x00, 0x73, 0x75, 0x0a, 0x00, 0x00, 0x00, 0x68, 0xc3, 0xa9, 0x6c, 0x6c, 0x6f, 0x20,
        0xe2, 0x9c, 0x93, 0x75, 0x01, 0x00, 0x00, 0x00, 0x6c, 0x5b, 0x03, 0x00, 0x00, 0x00, 0x69,
        0x01, 0x00, 0x00, 0x00, 0x5b, 0x01, 0x00, 0x00, 0x00, 0x73, 0x02, 0x00, 0x00, 0x00, 0x00,
        0xff, 0x28, 0x01, 0x00, 0x00, 0x00, 0x46, 0x75, 0x01, 0x00, 0x00, 0x00, 0x6b, 0x6c, 0x03,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x75, 0x01, 0x00, 0x00, 0x00, 0x65,
        0x7b, 0x30, 0x30,
    ];

    fn mixed_dict() -> PyValue {
        PyValue::Dict(vec![
            (s("n"), PyValue::BigInt("1180591620717411303424".into())),
            (s("m"), PyValue::BigInt("-1180591620717411303424".into())),
            (s("f"), PyValue::Float(-2.5)),
            (s("t"), PyValue::Bool(true)),
            (s("z"), PyValue::None),
            (s("s"), s("héllo ✓")),
            (
                s("l"),
                PyValue::List(vec![
                    PyValue::Int(1),
                    PyValue::List(vec![PyValue::Bytes(vec![0x00, 0xff])]),
                    PyValue::Tuple(vec![PyValue::Bool(false)]),
                ]),
            ),
            (s("k"), PyValue::Int(1 << 40)),
            (s("e"), PyValue::Dict(vec![])),
        ])
    }

    /// (value, marshal.dumps(value, 2) from CPython 3.11)
    fn int_fixtures() -> Vec<(PyValue, Vec<u8>)> {
        vec![
            (PyValue::Int(0), vec![0x69, 0, 0, 0, 0]),
            (PyValue::Int(-1), vec![0x69, 0xff, 0xff, 0xff, 0xff]),
            (PyValue::Int(1 << 15), vec![0x69, 0x00, 0x80, 0x00, 0x00]),
            (
                PyValue::Int(i32::MAX.into()),
                vec![0x69, 0xff, 0xff, 0xff, 0x7f],
            ),
            (
                PyValue::Int(i32::MIN.into()),
                vec![0x69, 0x00, 0x00, 0x00, 0x80],
            ),
            (
                PyValue::Int(1 << 31),
                vec![0x6c, 0x03, 0, 0, 0, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00],
            ),
            (
                PyValue::Int(-(1 << 31) - 1),
                vec![
                    0x6c, 0xfd, 0xff, 0xff, 0xff, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00,
                ],
            ),
            (
                PyValue::Int(i64::MAX),
                vec![
                    0x6c, 0x05, 0, 0, 0, 0xff, 0x7f, 0xff, 0x7f, 0xff, 0x7f, 0xff, 0x7f, 0x07, 0x00,
                ],
            ),
            (
                PyValue::Int(i64::MIN),
                vec![
                    0x6c, 0xfb, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00,
                ],
            ),
            (
                PyValue::BigInt("9223372036854775808".into()),
                vec![0x6c, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00],
            ),
            (
                PyValue::BigInt("1180591620717411303424".into()),
                vec![0x6c, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x04],
            ),
            (
                PyValue::BigInt("-1180591620717411303424".into()),
                vec![
                    0x6c, 0xfb, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x04,
                ],
            ),
        ]
    }

    #[test]
    fn encodes_dict_with_nested_list_like_cpython() {
        assert_eq!(to_vec(&dict_with_nested_list()), DICT_WITH_NESTED_LIST);
    }

    #[test]
    fn decodes_dict_with_nested_list_from_cpython() {
        assert_eq!(dec(DICT_WITH_NESTED_LIST), Ok(dict_with_nested_list()));
    }

    #[test]
    fn encodes_mixed_dict_like_cpython() {
        assert_eq!(to_vec(&mixed_dict()), MIXED_DICT);
    }

    #[test]
    fn decodes_mixed_dict_from_cpython() {
        assert_eq!(dec(MIXED_DICT), Ok(mixed_dict()));
    }

    #[test]
    fn encodes_ints_like_cpython() {
        for (value, bytes) in int_fixtures() {
            assert_eq!(to_vec(&value), bytes, "{value:?}");
        }
    }

    #[test]
    fn decodes_ints_from_cpython() {
        for (value, bytes) in int_fixtures() {
            let expected = match value {
                // 2**63 does not fit i64: it stays a BigInt; everything else in range is an Int.
                PyValue::BigInt(ref t) if t == "9223372036854775808" => value.clone(),
                other => other,
            };
            assert_eq!(dec(&bytes), Ok(expected));
        }
    }

    #[test]
    fn bigint_that_fits_i32_is_encoded_as_i() {
        assert_eq!(
            to_vec(&PyValue::BigInt("-5".into())),
            [0x69, 0xfb, 0xff, 0xff, 0xff]
        );
        assert_eq!(to_vec(&PyValue::BigInt("+007".into())), [0x69, 7, 0, 0, 0]);
        assert_eq!(to_vec(&PyValue::BigInt("-0".into())), [0x69, 0, 0, 0, 0]);
    }

    #[test]
    fn bigint_with_non_decimal_text_is_encoded_as_str() {
        assert_eq!(
            to_vec(&PyValue::BigInt("12a".into())),
            [b'u', 3, 0, 0, 0, b'1', b'2', b'a']
        );
        assert_eq!(to_vec(&PyValue::BigInt("".into())), [b'u', 0, 0, 0, 0]);
    }

    #[test]
    fn encodes_float_true_none_false_like_cpython() {
        // marshal.dumps(1.5, 2), marshal.dumps([True, None, False], 2)
        assert_eq!(
            to_vec(&PyValue::Float(1.5)),
            [0x67, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f]
        );
        assert_eq!(
            to_vec(&PyValue::List(vec![
                PyValue::Bool(true),
                PyValue::None,
                PyValue::Bool(false)
            ])),
            [0x5b, 0x03, 0x00, 0x00, 0x00, 0x54, 0x4e, 0x46]
        );
    }

    #[test]
    fn encodes_non_ascii_str_as_utf8_like_cpython() {
        // marshal.dumps("héllo ✓", 2)
        assert_eq!(
            to_vec(&s("héllo ✓")),
            [0x75, 0x0a, 0, 0, 0, 0x68, 0xc3, 0xa9, 0x6c, 0x6c, 0x6f, 0x20, 0xe2, 0x9c, 0x93]
        );
    }

    #[test]
    fn encodes_tuple_like_cpython() {
        // marshal.dumps((1, "x"), 2)
        assert_eq!(
            to_vec(&PyValue::Tuple(vec![PyValue::Int(1), s("x")])),
            [0x28, 0x02, 0, 0, 0, 0x69, 0x01, 0, 0, 0, 0x75, 0x01, 0, 0, 0, 0x78]
        );
    }

    #[test]
    fn infinite_and_nan_floats_round_trip() {
        // marshal.dumps(float("inf"), 2)
        assert_eq!(
            to_vec(&PyValue::Float(f64::INFINITY)),
            [0x67, 0, 0, 0, 0, 0, 0, 0xf0, 0x7f]
        );
        match dec(&to_vec(&PyValue::Float(f64::NAN))) {
            Ok(PyValue::Float(f)) => assert!(f.is_nan()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bigint_of_eleven_digits_matches_cpython_both_ways() {
        // marshal.dumps(-3**100, 2)
        let bytes = [
            108, 245, 255, 255, 255, 209, 19, 112, 30, 87, 117, 163, 52, 93, 119, 62, 104, 150, 21,
            180, 27, 103, 74, 167, 12, 105, 1,
        ];
        let value = PyValue::BigInt("-515377520732011331036461129765621272702107522001".into());
        assert_eq!(to_vec(&value), bytes);
        assert_eq!(dec(&bytes), Ok(value));
    }

    #[test]
    fn large_bigint_round_trips() {
        let text = format!("-{}", "98765432109876543210".repeat(20));
        let value = PyValue::BigInt(text);
        assert_eq!(dec(&to_vec(&value)), Ok(value));
    }

    #[test]
    fn int_round_trips_at_every_power_of_two() {
        for bits in 0..63 {
            for value in [
                1i64 << bits,
                (1i64 << bits) - 1,
                -(1i64 << bits),
                -(1i64 << bits) + 1,
            ] {
                assert_eq!(dec(&to_vec(&PyValue::Int(value))), Ok(PyValue::Int(value)));
            }
        }
    }

    #[test]
    fn interned_str_is_decoded() {
        assert_eq!(dec(b"t\x02\x00\x00\x00ab"), Ok(s("ab")));
    }

    #[test]
    fn empty_long_is_zero() {
        assert_eq!(dec(b"l\x00\x00\x00\x00"), Ok(PyValue::Int(0)));
    }

    #[test]
    fn dict_keeps_order_and_non_str_keys() {
        let value = PyValue::Dict(vec![
            (s("z"), PyValue::Int(1)),
            (PyValue::Int(3), PyValue::None),
            (PyValue::Tuple(vec![]), s("a")),
        ]);
        assert_eq!(dec(&to_vec(&value)), Ok(value));
    }

    #[test]
    fn empty_input_is_truncated() {
        assert_eq!(dec(b""), Err(MarshalError::Truncated));
    }

    #[test]
    fn every_strict_prefix_of_a_value_is_truncated() {
        for end in 0..MIXED_DICT.len() {
            assert_eq!(
                dec(&MIXED_DICT[..end]),
                Err(MarshalError::Truncated),
                "{end}"
            );
        }
    }

    #[test]
    fn huge_claimed_str_length_is_truncated_not_allocated() {
        assert_eq!(dec(b"u\xff\xff\xff\xffabcde"), Err(MarshalError::Truncated));
        assert_eq!(dec(b"s\xff\xff\xff\xffabcde"), Err(MarshalError::Truncated));
    }

    #[test]
    fn huge_claimed_list_count_is_truncated_not_allocated() {
        assert_eq!(dec(b"[\xff\xff\xff\xffNNNN"), Err(MarshalError::Truncated));
        assert_eq!(dec(b"(\xff\xff\xff\x7fNNNN"), Err(MarshalError::Truncated));
    }

    #[test]
    fn huge_claimed_long_digit_count_is_truncated_not_allocated() {
        assert_eq!(
            dec(b"l\xff\xff\xff\x7f\x01\x00"),
            Err(MarshalError::Truncated)
        );
        assert_eq!(
            dec(b"l\x01\x00\x00\x80\x01\x00"),
            Err(MarshalError::Truncated)
        );
    }

    #[test]
    fn list_count_larger_than_items_is_truncated() {
        assert_eq!(dec(b"[\x03\x00\x00\x00NN"), Err(MarshalError::Truncated));
    }

    #[test]
    fn dict_without_terminator_is_truncated() {
        assert_eq!(dec(b"{NN"), Err(MarshalError::Truncated));
        assert_eq!(dec(b"{N"), Err(MarshalError::Truncated));
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        assert_eq!(dec(b"NNN"), Err(MarshalError::TrailingBytes(2)));
        let mut data = DICT_WITH_NESTED_LIST.to_vec();
        data.push(0);
        assert_eq!(dec(&data), Err(MarshalError::TrailingBytes(1)));
    }

    #[test]
    fn nesting_at_the_limit_is_accepted() {
        let limits = DecodeLimits { max_depth: 5 };
        assert!(decode(&nested_lists(5), limits).is_ok());
    }

    #[test]
    fn nesting_past_the_limit_is_too_deep() {
        let limits = DecodeLimits { max_depth: 5 };
        assert_eq!(
            decode(&nested_lists(6), limits),
            Err(MarshalError::TooDeep(5))
        );
    }

    #[test]
    fn dicts_and_tuples_count_towards_depth() {
        let limits = DecodeLimits { max_depth: 2 };
        assert_eq!(
            decode(b"{N(\x00\x00\x00\x000", limits),
            Ok(PyValue::Dict(vec![(PyValue::None, PyValue::Tuple(vec![]))]))
        );
        assert_eq!(
            decode(b"{N{N(\x00\x00\x00\x0000", limits),
            Err(MarshalError::TooDeep(2))
        );
    }

    #[test]
    fn default_depth_limit_stops_very_deep_data_without_overflowing_the_stack() {
        assert_eq!(dec(&nested_lists(100_000)), Err(MarshalError::TooDeep(64)));
    }

    #[test]
    fn zero_depth_limit_accepts_only_scalars() {
        let limits = DecodeLimits { max_depth: 0 };
        assert_eq!(decode(b"N", limits), Ok(PyValue::None));
        assert_eq!(decode(b"{0", limits), Err(MarshalError::TooDeep(0)));
    }

    #[test]
    fn unknown_type_codes_are_unsupported() {
        // set, frozenset, code object, text float, complex, ellipsis, StopIteration, ref.
        for code in [
            b'<', b'>', b'c', b'f', b'y', b'.', b'S', b'r', b'?', 0u8, 0xff,
        ] {
            assert_eq!(dec(&[code]), Err(MarshalError::UnsupportedType(code)));
        }
    }

    #[test]
    fn version_4_short_forms_are_unsupported() {
        for code in [b'a', b'A', b'z', b'Z', b')'] {
            assert_eq!(dec(&[code, 0]), Err(MarshalError::UnsupportedType(code)));
        }
    }

    #[test]
    fn flag_ref_bit_is_unsupported() {
        assert_eq!(
            dec(b"\xe9\x01\x00\x00\x00"),
            Err(MarshalError::UnsupportedType(0xe9))
        );
        assert_eq!(dec(b"\xce"), Err(MarshalError::UnsupportedType(0xce)));
    }

    #[test]
    fn null_outside_dict_end_is_unsupported() {
        assert_eq!(dec(b"0"), Err(MarshalError::UnsupportedType(b'0')));
        assert_eq!(
            dec(b"[\x01\x00\x00\x000"),
            Err(MarshalError::UnsupportedType(b'0'))
        );
        assert_eq!(dec(b"{N00"), Err(MarshalError::UnsupportedType(b'0')));
    }

    #[test]
    fn invalid_utf8_str_is_rejected() {
        assert_eq!(
            dec(b"u\x01\x00\x00\x00\xff"),
            Err(MarshalError::InvalidUtf8)
        );
        // A lone surrogate, as Python writes it with "surrogatepass".
        assert_eq!(
            dec(b"u\x03\x00\x00\x00\xed\xa0\x80"),
            Err(MarshalError::InvalidUtf8)
        );
        assert_eq!(
            dec(b"t\x01\x00\x00\x00\x80"),
            Err(MarshalError::InvalidUtf8)
        );
    }

    #[test]
    fn bytes_need_not_be_utf8() {
        assert_eq!(
            dec(b"s\x01\x00\x00\x00\xff"),
            Ok(PyValue::Bytes(vec![0xff]))
        );
    }

    #[test]
    fn long_digit_out_of_range_is_invalid() {
        assert_eq!(
            dec(b"l\x01\x00\x00\x00\x00\x80"),
            Err(MarshalError::InvalidInt)
        );
    }

    #[test]
    fn unnormalized_long_is_invalid() {
        assert_eq!(
            dec(b"l\x01\x00\x00\x00\x00\x00"),
            Err(MarshalError::InvalidInt)
        );
        assert_eq!(
            dec(b"l\xfe\xff\xff\xff\x01\x00\x00\x00"),
            Err(MarshalError::InvalidInt)
        );
    }

    #[test]
    fn long_with_i32_min_digit_count_is_invalid() {
        assert_eq!(dec(b"l\x00\x00\x00\x80"), Err(MarshalError::InvalidInt));
    }

    #[test]
    fn long_with_too_many_digits_is_invalid() {
        let mut data = b"l".to_vec();
        data.extend_from_slice(&((MAX_BIGINT_DIGITS as i32) + 1).to_le_bytes());
        data.extend(std::iter::repeat_n([0x01, 0x00], MAX_BIGINT_DIGITS + 1).flatten());
        assert_eq!(dec(&data), Err(MarshalError::InvalidInt));
    }

    #[test]
    fn long_with_max_digits_is_decoded() {
        let mut data = b"l".to_vec();
        data.extend_from_slice(&(MAX_BIGINT_DIGITS as i32).to_le_bytes());
        data.extend(std::iter::repeat_n([0xff, 0x7f], MAX_BIGINT_DIGITS).flatten());
        // str(2 ** (15 * 1024) - 1) in CPython: 4624 digits, 6618101122…7886334975
        match dec(&data) {
            Ok(PyValue::BigInt(text)) => {
                assert_eq!(text.len(), 4624);
                assert!(text.starts_with("6618101122"));
                assert!(text.ends_with("7886334975"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn long_just_outside_i64_is_bigint() {
        // -(2**63) - 1
        let value = PyValue::BigInt("-9223372036854775809".into());
        let bytes = to_vec(&value);
        assert_eq!(bytes[0], b'l');
        assert_eq!(dec(&bytes), Ok(value));
    }

    #[test]
    fn long_that_fits_i32_decodes_to_int() {
        // Python never writes this, but it is a valid encoding of 5.
        assert_eq!(dec(b"l\x01\x00\x00\x00\x05\x00"), Ok(PyValue::Int(5)));
        assert_eq!(dec(b"l\xff\xff\xff\xff\x05\x00"), Ok(PyValue::Int(-5)));
    }

    #[test]
    fn decoder_never_panics_on_corrupted_fixtures() {
        // Flip every bit of the fixture, one at a time; any result is fine, a panic is not.
        for i in 0..MIXED_DICT.len() {
            for bit in 0..8 {
                let mut data = MIXED_DICT.to_vec();
                data[i] ^= 1 << bit;
                let _ = dec(&data);
            }
        }
    }
}
