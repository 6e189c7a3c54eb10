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

/// Limits applied while decoding untrusted data.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Deepest nesting of containers accepted.
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

/// Appends the marshal (version 2) encoding of `value` to `out`.
pub fn encode(value: &crate::PyValue, out: &mut Vec<u8>) {
    let _ = (value, out);
    todo!()
}

/// Encodes `value` into a new buffer.
pub fn to_vec(value: &crate::PyValue) -> Vec<u8> {
    let mut out = Vec::new();
    encode(value, &mut out);
    out
}

/// Decodes exactly one value that spans all of `data`.
pub fn decode(data: &[u8], limits: DecodeLimits) -> Result<crate::PyValue, MarshalError> {
    let _ = (data, limits);
    todo!()
}
