//! Structured values in JSON columns, for both backends: encoded on write, decoded on read; a
//! value that does not encode or decode is `Corrupt`, naming `what` it is.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Result, StoreError};

pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|err| StoreError::Corrupt(format!("cannot encode {what} as JSON: {err}")))
}

/// An optional value's column: its JSON, or NULL for `None`.
pub(crate) fn optional_to_json<T: Serialize>(
    value: Option<&T>,
    what: &str,
) -> Result<Option<String>> {
    value.map(|value| to_json(value, what)).transpose()
}

pub(crate) fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|err| StoreError::Corrupt(format!("{what} is not valid JSON: {err}")))
}
