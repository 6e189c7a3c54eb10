//! How an HTTP request to a hook URL becomes the workflow's `_request` dict (CONTRACT.md §2).
//!
//! `_request` merges, at top level, the query string (lowest precedence), the headers, and the
//! parsed body (highest precedence). Header names are canonicalised (`content-type` →
//! `Content-Type`), a header sent several times is joined with `", "`.

use std::collections::HashMap;

use crate::PyValue;

/// The media types a hook URL accepts.
pub const ACCEPTED_CONTENT_TYPES: [&str; 3] = [
    "application/json",
    "multipart/form-data",
    "application/x-www-form-urlencoded",
];

/// The parts of an HTTP request that `_request` is built from. The caller has already checked the
/// method and the body size.
#[derive(Debug, Clone, Default)]
pub struct IncomingRequest<'a> {
    /// Header names as received (any case) with their raw values, in the order received; a header
    /// sent several times appears several times.
    pub headers: Vec<(&'a str, &'a [u8])>,
    /// The raw query string, without the leading `?`.
    pub query: Option<&'a str>,
    /// The body, shared: the multipart parser reads it in place.
    pub body: bytes::Bytes,
}

/// Why a request cannot be turned into `_request`. The workflow is not run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RequestError {
    /// Missing content type, or one not in [`ACCEPTED_CONTENT_TYPES`] → `415`.
    #[error("{}: send one of application/json, multipart/form-data, application/x-www-form-urlencoded", describe_content_type(.0))]
    UnsupportedMediaType(Option<String>),
    /// The body (or query string) cannot be parsed → `400`. The message says what is wrong,
    /// e.g. "invalid JSON body: expected value at line 1 column 2".
    #[error("{0}")]
    Malformed(String),
}

fn describe_content_type(content_type: &Option<String>) -> String {
    match content_type {
        Some(value) => format!("unsupported content type {value:?}"),
        None => "the request has no Content-Type".to_string(),
    }
}

/// Builds `_request` (a `PyValue::Dict`) from a request.
///
/// Rules (see CONTRACT.md §2 "`_request`"):
/// - content type: the media type (before `;`) matched case-insensitively against
///   [`ACCEPTED_CONTENT_TYPES`], parameters allowed; otherwise [`RequestError::UnsupportedMediaType`].
/// - headers: canonical names ([`canonical_header_name`]); repeated headers joined with `", "`;
///   values decoded as UTF-8, or Latin-1 when not valid UTF-8.
/// - query string: fields as for urlencoded forms (a `str`, or a `list` of `str` when repeated);
///   invalid percent-encoding or invalid UTF-8 after decoding → `Malformed`.
/// - `application/json`: an empty body is `{}`; an object's keys merge into `_request`; any other
///   top-level value goes under `"body"`; invalid JSON → `Malformed`. Numbers: integers that fit
///   i64 are `Int`, larger integers `BigInt`, others `Float`.
/// - `application/x-www-form-urlencoded`: `+` is a space; each field a `str`, a repeated field a
///   `list` of `str` in order; bad percent-encoding (`%` not followed by two hex digits) or invalid
///   UTF-8 → `Malformed`.
/// - `multipart/form-data`: the `boundary` parameter is required (`Malformed` without it); a part
///   without a filename is a `str` field (invalid UTF-8 → `Malformed`), a part with a filename is a
///   dict `{"filename": str, "content_type": str, "content": bytes}` (`content_type` defaults to
///   `application/octet-stream`); repeated names become lists; a broken body → `Malformed`.
/// - precedence on a name clash: body > headers > query. A key keeps the position where it was
///   first inserted.
///
/// Details where the contract is silent:
/// - The content type is the `Content-Type` header's value; sent several times, its values are
///   joined with `", "` as for any header, which names no accepted media type → `415`.
///   The `charset` parameter is ignored: JSON, forms and text parts are always read as UTF-8.
/// - JSON: a body of only whitespace counts as empty (`{}`), and a leading UTF-8 byte order mark
///   is skipped, as Python's `json.loads` does for bytes. Integers from 2^63 to 2^64 - 1 are
///   `BigInt`; larger integers become `Float` (serde_json without arbitrary precision), where
///   Python would keep them exact.
///   An object with a key repeated keeps the last value at the first key's position, like Python.
///   Nesting deeper than 128 levels is `Malformed` (serde_json's recursion limit).
/// - Forms and query strings: fields are separated by `&` only; a field without `=` has the value
///   `""` (`?debug` gives `{"debug": ""}`); empty fields (`a=1&&b=2`) are skipped. Names are
///   percent-decoded like values.
/// - Multipart: a part whose `Content-Disposition` has no `name` is `Malformed`; a part with a
///   `filename` parameter, even `filename=""`, is a file part; `content_type` is the part's
///   `Content-Type` header as sent; a name used by both text and file parts gives a list mixing
///   `str`s and file dicts, in order.
pub fn build_request(request: &IncomingRequest<'_>) -> Result<PyValue, RequestError> {
    let headers = collect_headers(&request.headers);

    let content_type = headers.get("Content-Type").and_then(PyValue::as_str);
    let Some(content_type) = content_type else {
        return Err(RequestError::UnsupportedMediaType(None));
    };
    let (media_type, params) = parse_content_type(content_type);

    let body = match media_type.as_str() {
        "application/json" => parse_json_body(&request.body)?,
        "application/x-www-form-urlencoded" => parse_form(&request.body, "form field")?,
        "multipart/form-data" => {
            let boundary = params
                .iter()
                .find(|(name, _)| name == "boundary")
                .map(|(_, value)| value.as_str())
                .filter(|boundary| !boundary.is_empty())
                .ok_or_else(|| {
                    RequestError::Malformed(
                        "multipart/form-data needs a boundary parameter".to_string(),
                    )
                })?;
            parse_multipart(request.body.clone(), boundary)?
        }
        _ => {
            return Err(RequestError::UnsupportedMediaType(Some(
                content_type.to_string(),
            )))
        }
    };

    let mut merged = match request.query {
        Some(query) => parse_form(query.as_bytes(), "query parameter")?,
        None => OrderedDict::default(),
    };
    merged.merge(headers);
    merged.merge(body);
    Ok(merged.into_value())
}

/// `content-type` → `Content-Type`, `x-hub-signature-256` → `X-Hub-Signature-256`: the first
/// letter of each `-`-separated part upper case, the rest lower case.
pub fn canonical_header_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut start_of_part = true;
    for c in name.chars() {
        if start_of_part {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c.to_ascii_lowercase());
        }
        start_of_part = c == '-';
    }
    out
}

/// A dict under construction: string keys in first-insertion order, with an index so that
/// large forms and JSON objects stay linear.
#[derive(Default)]
struct OrderedDict {
    items: Vec<(String, PyValue)>,
    index: HashMap<String, usize>,
}

impl OrderedDict {
    fn get(&self, key: &str) -> Option<&PyValue> {
        self.index.get(key).map(|&i| &self.items[i].1)
    }

    /// Sets `key` to `value`; an existing key keeps its position.
    fn set(&mut self, key: String, value: PyValue) {
        match self.index.get(&key) {
            Some(&i) => self.items[i].1 = value,
            None => {
                self.index.insert(key.clone(), self.items.len());
                self.items.push((key, value));
            }
        }
    }

    /// Adds a field value: the first is kept as is, a repeated field becomes a `list`.
    /// (Field values are never lists themselves, so a list here is a repeated field.)
    fn add_field(&mut self, key: String, value: PyValue) {
        match self.index.get(&key) {
            Some(&i) => {
                let slot = &mut self.items[i].1;
                if let PyValue::List(values) = slot {
                    values.push(value);
                } else {
                    let first = std::mem::replace(slot, PyValue::None);
                    *slot = PyValue::List(vec![first, value]);
                }
            }
            None => self.set(key, value),
        }
    }

    /// Sets every key of `other`, in its order: `other` wins on a clash.
    fn merge(&mut self, other: OrderedDict) {
        for (key, value) in other.items {
            self.set(key, value);
        }
    }

    fn into_value(self) -> PyValue {
        PyValue::Dict(
            self.items
                .into_iter()
                .map(|(key, value)| (PyValue::Str(key), value))
                .collect(),
        )
    }
}

fn collect_headers(headers: &[(&str, &[u8])]) -> OrderedDict {
    let mut joined: OrderedDict = OrderedDict::default();
    for (name, raw) in headers {
        let name = canonical_header_name(name);
        let value = decode_header_value(raw);
        match joined.index.get(&name) {
            Some(&i) => {
                if let PyValue::Str(existing) = &mut joined.items[i].1 {
                    existing.push_str(", ");
                    existing.push_str(&value);
                }
            }
            None => joined.set(name, PyValue::Str(value)),
        }
    }
    joined
}

/// A header value as `_request` holds it: UTF-8 when valid, Latin-1 otherwise.
pub fn decode_header_value(raw: &[u8]) -> String {
    match std::str::from_utf8(raw) {
        Ok(text) => text.to_string(),
        Err(_) => latin1(raw),
    }
}

fn latin1(raw: &[u8]) -> String {
    raw.iter().map(|&b| char::from(b)).collect()
}

/// `Multipart/Form-Data; boundary="a b"; charset=utf-8` →
/// (`multipart/form-data`, [(`boundary`, `a b`), (`charset`, `utf-8`)]).
/// Media type and parameter names are lower-cased; quoted values are unquoted.
fn parse_content_type(value: &str) -> (String, Vec<(String, String)>) {
    let (media_type, mut rest) = value.split_once(';').unwrap_or((value, ""));
    let media_type = media_type.trim().to_ascii_lowercase();
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c == ';' || c.is_ascii_whitespace());
        if rest.is_empty() {
            break;
        }
        let name_end = rest.find(['=', ';']).unwrap_or(rest.len());
        let name = rest[..name_end].trim().to_ascii_lowercase();
        rest = &rest[name_end..];
        let value = match rest.strip_prefix('=') {
            None => String::new(),
            Some(after) => {
                let after = after.trim_start();
                if let Some(quoted) = after.strip_prefix('"') {
                    let mut value = String::new();
                    let mut chars = quoted.char_indices();
                    let mut end = quoted.len();
                    while let Some((i, c)) = chars.next() {
                        match c {
                            '"' => {
                                end = i + 1;
                                break;
                            }
                            '\\' => {
                                if let Some((_, escaped)) = chars.next() {
                                    value.push(escaped);
                                }
                            }
                            c => value.push(c),
                        }
                    }
                    rest = &quoted[end..];
                    value
                } else {
                    let end = after.find(';').unwrap_or(after.len());
                    rest = &after[end..];
                    after[..end].trim().to_string()
                }
            }
        };
        params.push((name, value));
    }
    (media_type, params)
}

/// A name or value quoted for an error message (JSON string syntax), cut when very long.
fn quote(text: &str) -> String {
    const MAX_CHARS: usize = 64;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => serde_json::Value::String(format!("{}…", &text[..cut])).to_string(),
        None => serde_json::Value::String(text.to_string()).to_string(),
    }
}

fn parse_json_body(body: &[u8]) -> Result<OrderedDict, RequestError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut dict = OrderedDict::default();
    if body
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        return Ok(dict);
    }
    let JsonValue(value) = serde_json::from_slice(body)
        .map_err(|e| RequestError::Malformed(format!("invalid JSON body: {e}")))?;
    match value {
        PyValue::Dict(items) => {
            for (key, value) in items {
                if let PyValue::Str(key) = key {
                    dict.set(key, value);
                }
            }
        }
        other => dict.set("body".to_string(), other),
    }
    Ok(dict)
}

/// A JSON document decoded straight into the value Python's `json.loads` gives, keeping the
/// order of object keys.
struct JsonValue(PyValue);

impl<'de> serde::Deserialize<'de> for JsonValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor).map(JsonValue)
    }
}

struct JsonVisitor;

impl<'de> serde::de::Visitor<'de> for JsonVisitor {
    type Value = PyValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<PyValue, E> {
        Ok(PyValue::None)
    }

    fn visit_bool<E>(self, v: bool) -> Result<PyValue, E> {
        Ok(PyValue::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<PyValue, E> {
        Ok(PyValue::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<PyValue, E> {
        Ok(match i64::try_from(v) {
            Ok(v) => PyValue::Int(v),
            Err(_) => PyValue::BigInt(v.to_string()),
        })
    }

    fn visit_f64<E>(self, v: f64) -> Result<PyValue, E> {
        Ok(PyValue::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<PyValue, E> {
        Ok(PyValue::Str(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<PyValue, E> {
        Ok(PyValue::Str(v))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<PyValue, A::Error> {
        let mut items = Vec::new();
        while let Some(JsonValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(PyValue::List(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<PyValue, A::Error> {
        let mut dict = OrderedDict::default();
        while let Some((key, JsonValue(value))) = map.next_entry::<String, JsonValue>()? {
            dict.set(key, value);
        }
        Ok(dict.into_value())
    }
}

/// Parses `a=1&b=x+y&a=2` (a urlencoded form body or a query string). `what` names a field in
/// error messages ("form field", "query parameter").
fn parse_form(input: &[u8], what: &str) -> Result<OrderedDict, RequestError> {
    let mut dict = OrderedDict::default();
    for field in input
        .split(|&b| b == b'&')
        .filter(|field| !field.is_empty())
    {
        let (raw_name, raw_value) = match field.iter().position(|&b| b == b'=') {
            Some(eq) => (&field[..eq], &field[eq + 1..]),
            None => (field, &b""[..]),
        };
        let shown_name = || quote(&String::from_utf8_lossy(raw_name));
        let name = percent_decode(raw_name).ok_or_else(|| {
            RequestError::Malformed(format!(
                "invalid percent-encoding in {what} name {}: \"%\" must be followed by two hex digits",
                shown_name()
            ))
        })?;
        let name = String::from_utf8(name).map_err(|_| {
            RequestError::Malformed(format!(
                "{what} name {} is not valid UTF-8 once percent-decoded",
                shown_name()
            ))
        })?;
        let value = percent_decode(raw_value).ok_or_else(|| {
            RequestError::Malformed(format!(
                "invalid percent-encoding in {what} {}: \"%\" must be followed by two hex digits",
                quote(&name)
            ))
        })?;
        let value = String::from_utf8(value).map_err(|_| {
            RequestError::Malformed(format!(
                "{what} {} is not valid UTF-8 once percent-decoded",
                quote(&name)
            ))
        })?;
        dict.add_field(name, PyValue::Str(value));
    }
    Ok(dict)
}

/// Strict `application/x-www-form-urlencoded` decoding: `+` is a space, `%XY` the byte 0xXY;
/// `None` when a `%` is not followed by two hex digits.
fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let high = hex_value(*input.get(i + 1)?)?;
                let low = hex_value(*input.get(i + 2)?)?;
                out.push(high << 4 | low);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(out)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

fn parse_multipart(body: bytes::Bytes, boundary: &str) -> Result<OrderedDict, RequestError> {
    let stream = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    futures::executor::block_on(async move {
        let mut dict = OrderedDict::default();
        let error = |e| multipart_error(e, boundary);
        while let Some(field) = multipart.next_field().await.map_err(error)? {
            let number = field.index() + 1;
            let Some(name) = field.name().map(str::to_string) else {
                return Err(RequestError::Malformed(format!(
                    "multipart part #{number} has no name in its Content-Disposition header"
                )));
            };
            let filename = field.file_name().map(str::to_string);
            let content_type = field
                .headers()
                .get("content-type")
                .map(|value| decode_header_value(value.as_bytes()))
                .unwrap_or_else(|| "application/octet-stream".to_string());
            let content = field.bytes().await.map_err(error)?;
            let value = match filename {
                Some(filename) => PyValue::Dict(vec![
                    (PyValue::Str("filename".into()), PyValue::Str(filename)),
                    (PyValue::Str("content_type".into()), PyValue::Str(content_type)),
                    (PyValue::Str("content".into()), PyValue::Bytes(content.to_vec())),
                ]),
                None => match String::from_utf8(content.to_vec()) {
                    Ok(text) => PyValue::Str(text),
                    Err(_) => {
                        return Err(RequestError::Malformed(format!(
                            "multipart field {} is not valid UTF-8 (send binary data as a file part, with a filename)",
                            quote(&name)
                        )))
                    }
                },
            };
            dict.add_field(name, value);
        }
        Ok(dict)
    })
}

fn multipart_error(error: multer::Error, boundary: &str) -> RequestError {
    let message = match &error {
        multer::Error::IncompleteStream => format!(
            "broken multipart body: it ends before the closing boundary {} (is the boundary parameter right?)",
            quote(&format!("--{boundary}--"))
        ),
        multer::Error::IncompleteFieldData { field_name } => match field_name {
            Some(name) => format!(
                "broken multipart body: part {} is cut off before the next boundary",
                quote(name)
            ),
            None => "broken multipart body: a part is cut off before the next boundary".to_string(),
        },
        multer::Error::IncompleteHeaders => {
            "broken multipart body: a part's headers end before the blank line that closes them"
                .to_string()
        }
        multer::Error::ReadHeaderFailed(cause) => {
            format!("broken multipart body: cannot read a part's headers ({cause})")
        }
        multer::Error::DecodeHeaderName { name, .. } => format!(
            "broken multipart body: invalid header name {} in a part",
            quote(name)
        ),
        multer::Error::DecodeHeaderValue { .. } => {
            "broken multipart body: invalid header value in a part".to_string()
        }
        other => format!("broken multipart body: {other}"),
    };
    RequestError::Malformed(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> PyValue {
        PyValue::Str(text.to_string())
    }

    fn dict(items: &[(&str, PyValue)]) -> PyValue {
        PyValue::Dict(
            items
                .iter()
                .map(|(key, value)| (s(key), value.clone()))
                .collect(),
        )
    }

    fn build(
        headers: &[(&str, &[u8])],
        query: Option<&str>,
        body: &[u8],
    ) -> Result<PyValue, RequestError> {
        build_request(&IncomingRequest {
            headers: headers.to_vec(),
            query,
            body: bytes::Bytes::copy_from_slice(body),
        })
    }

    fn json(body: &str) -> Result<PyValue, RequestError> {
        build(
            &[("content-type", b"application/json")],
            None,
            body.as_bytes(),
        )
    }

    /// `_request` minus the Content-Type header, for body-focused tests.
    fn json_body(body: &str) -> PyValue {
        without_content_type(json(body).expect("valid JSON body"))
    }

    fn form(body: &str) -> Result<PyValue, RequestError> {
        build(
            &[("content-type", b"application/x-www-form-urlencoded")],
            None,
            body.as_bytes(),
        )
    }

    fn form_body(body: &str) -> PyValue {
        without_content_type(form(body).expect("valid form body"))
    }

    fn without_content_type(value: PyValue) -> PyValue {
        match value {
            PyValue::Dict(items) => PyValue::Dict(
                items
                    .into_iter()
                    .filter(|(key, _)| key != &s("Content-Type"))
                    .collect(),
            ),
            other => other,
        }
    }

    fn malformed(result: Result<PyValue, RequestError>) -> String {
        match result {
            Err(RequestError::Malformed(message)) => message,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    const BOUNDARY: &str = "XyZ123";

    fn multipart(body: &str) -> Result<PyValue, RequestError> {
        multipart_bytes(body.as_bytes())
    }

    fn multipart_bytes(body: &[u8]) -> Result<PyValue, RequestError> {
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        build(&[("Content-Type", content_type.as_bytes())], None, body)
    }

    fn multipart_body(body: &str) -> PyValue {
        let value = multipart(body).expect("valid multipart body");
        match value {
            PyValue::Dict(items) => PyValue::Dict(items.into_iter().skip(1).collect()),
            other => other,
        }
    }

    fn text_part(name: &str, value: &str) -> String {
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        )
    }

    fn file_part(name: &str, filename: &str, content_type: &str, content: &str) -> String {
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n{content}\r\n"
        )
    }

    fn end() -> String {
        format!("--{BOUNDARY}--\r\n")
    }

    fn file(filename: &str, content_type: &str, content: &[u8]) -> PyValue {
        dict(&[
            ("filename", s(filename)),
            ("content_type", s(content_type)),
            ("content", PyValue::Bytes(content.to_vec())),
        ])
    }

    // canonical_header_name

    #[test]
    fn lower_case_header_name_is_canonicalised() {
        assert_eq!(canonical_header_name("content-type"), "Content-Type");
    }

    #[test]
    fn header_name_with_digits_is_canonicalised() {
        assert_eq!(
            canonical_header_name("x-hub-signature-256"),
            "X-Hub-Signature-256"
        );
    }

    #[test]
    fn upper_case_header_name_is_canonicalised() {
        assert_eq!(canonical_header_name("USER-AGENT"), "User-Agent");
        assert_eq!(
            canonical_header_name("WWW-Authenticate"),
            "Www-Authenticate"
        );
    }

    #[test]
    fn header_name_with_empty_parts_is_canonicalised() {
        assert_eq!(canonical_header_name("-a--b-"), "-A--B-");
        assert_eq!(canonical_header_name(""), "");
    }

    // headers

    #[test]
    fn headers_appear_with_canonical_names_and_str_values() {
        let value = build(
            &[
                ("content-type", b"application/json"),
                ("x-github-event", b"push"),
            ],
            None,
            b"",
        );
        assert_eq!(
            value,
            Ok(dict(&[
                ("Content-Type", s("application/json")),
                ("X-Github-Event", s("push")),
            ]))
        );
    }

    #[test]
    fn repeated_headers_are_joined_with_comma_space() {
        let value = build(
            &[
                ("Content-Type", b"application/json"),
                ("x-a", b"1"),
                ("accept", b"text/html"),
                ("X-A", b"2"),
                ("x-a", b"3"),
            ],
            None,
            b"",
        );
        assert_eq!(
            value,
            Ok(dict(&[
                ("Content-Type", s("application/json")),
                ("X-A", s("1, 2, 3")),
                ("Accept", s("text/html")),
            ]))
        );
    }

    #[test]
    fn utf8_header_value_is_decoded_as_utf8() {
        let value = build(
            &[
                ("Content-Type", b"application/json"),
                ("X-Name", "José".as_bytes()),
            ],
            None,
            b"",
        );
        assert_eq!(value.map(|v| v.get("X-Name").cloned()), Ok(Some(s("José"))));
    }

    #[test]
    fn non_utf8_header_value_is_decoded_as_latin1() {
        let value = build(
            &[
                ("Content-Type", b"application/json"),
                ("X-Name", b"Jos\xe9 \xff"),
            ],
            None,
            b"",
        );
        assert_eq!(
            value.map(|v| v.get("X-Name").cloned()),
            Ok(Some(s("José ÿ")))
        );
    }

    // content type

    #[test]
    fn missing_content_type_is_unsupported() {
        assert_eq!(
            build(&[("X-A", b"1")], None, b"{}"),
            Err(RequestError::UnsupportedMediaType(None))
        );
    }

    #[test]
    fn other_content_type_is_unsupported() {
        assert_eq!(
            build(
                &[("Content-Type", b"text/plain; charset=utf-8")],
                None,
                b"hi"
            ),
            Err(RequestError::UnsupportedMediaType(Some(
                "text/plain; charset=utf-8".to_string()
            )))
        );
    }

    #[test]
    fn json_suffix_media_type_is_unsupported() {
        assert_eq!(
            build(
                &[("Content-Type", b"application/vnd.api+json")],
                None,
                b"{}"
            ),
            Err(RequestError::UnsupportedMediaType(Some(
                "application/vnd.api+json".to_string()
            )))
        );
    }

    #[test]
    fn empty_content_type_is_unsupported() {
        assert_eq!(
            build(&[("Content-Type", b"")], None, b"{}"),
            Err(RequestError::UnsupportedMediaType(Some(String::new())))
        );
    }

    #[test]
    fn content_type_sent_twice_is_unsupported() {
        assert_eq!(
            build(
                &[
                    ("Content-Type", b"application/json"),
                    ("content-type", b"application/json")
                ],
                None,
                b"{}"
            ),
            Err(RequestError::UnsupportedMediaType(Some(
                "application/json, application/json".to_string()
            )))
        );
    }

    #[test]
    fn unsupported_content_type_wins_over_malformed_body() {
        assert_eq!(
            build(&[("Content-Type", b"text/xml")], Some("a=%zz"), b"<a"),
            Err(RequestError::UnsupportedMediaType(Some(
                "text/xml".to_string()
            )))
        );
    }

    #[test]
    fn media_type_is_matched_case_insensitively_with_charset_parameter() {
        let value = build(
            &[("content-type", b"Application/JSON ; Charset=UTF-8")],
            None,
            br#"{"a": 1}"#,
        );
        assert_eq!(
            value,
            Ok(dict(&[
                ("Content-Type", s("Application/JSON ; Charset=UTF-8")),
                ("a", PyValue::Int(1)),
            ]))
        );
    }

    #[test]
    fn form_media_type_is_matched_case_insensitively() {
        let value = build(
            &[(
                "Content-Type",
                b"APPLICATION/X-WWW-FORM-URLENCODED;charset=utf-8",
            )],
            None,
            b"a=1",
        );
        assert_eq!(value.map(|v| v.get("a").cloned()), Ok(Some(s("1"))));
    }

    // JSON

    #[test]
    fn empty_json_body_is_an_empty_dict() {
        assert_eq!(json_body(""), dict(&[]));
    }

    #[test]
    fn whitespace_only_json_body_is_an_empty_dict() {
        assert_eq!(json_body(" \r\n\t"), dict(&[]));
    }

    #[test]
    fn json_object_keys_merge_at_top_level() {
        assert_eq!(
            json(r#"{"file_url": "https://x/y.pdf", "n": 2}"#),
            Ok(dict(&[
                ("Content-Type", s("application/json")),
                ("file_url", s("https://x/y.pdf")),
                ("n", PyValue::Int(2)),
            ]))
        );
    }

    #[test]
    fn json_object_keeps_key_order() {
        assert_eq!(
            json_body(r#"{"z": 1, "a": 2, "m": 3}"#),
            dict(&[
                ("z", PyValue::Int(1)),
                ("a", PyValue::Int(2)),
                ("m", PyValue::Int(3)),
            ])
        );
    }

    #[test]
    fn json_repeated_key_keeps_last_value_at_first_position() {
        assert_eq!(
            json_body(r#"{"a": 1, "b": 2, "a": 3}"#),
            dict(&[("a", PyValue::Int(3)), ("b", PyValue::Int(2))])
        );
    }

    #[test]
    fn json_nested_values_are_decoded_like_python() {
        assert_eq!(
            json_body(r#"{"o": {"b": [1, 2.5, "x", true, false, null], "a": {}}}"#),
            dict(&[(
                "o",
                dict(&[
                    (
                        "b",
                        PyValue::List(vec![
                            PyValue::Int(1),
                            PyValue::Float(2.5),
                            s("x"),
                            PyValue::Bool(true),
                            PyValue::Bool(false),
                            PyValue::None,
                        ])
                    ),
                    ("a", dict(&[])),
                ])
            )])
        );
    }

    #[test]
    fn json_array_goes_under_body() {
        assert_eq!(
            json_body("[1, 2]"),
            dict(&[(
                "body",
                PyValue::List(vec![PyValue::Int(1), PyValue::Int(2)])
            )])
        );
    }

    #[test]
    fn json_string_goes_under_body() {
        assert_eq!(json_body(r#""hello""#), dict(&[("body", s("hello"))]));
    }

    #[test]
    fn json_number_goes_under_body() {
        assert_eq!(json_body("42"), dict(&[("body", PyValue::Int(42))]));
    }

    #[test]
    fn json_null_goes_under_body() {
        assert_eq!(json_body("null"), dict(&[("body", PyValue::None)]));
    }

    #[test]
    fn json_integer_in_i64_is_int() {
        assert_eq!(
            json_body(r#"{"a": -9223372036854775808, "b": 9223372036854775807}"#),
            dict(&[("a", PyValue::Int(i64::MIN)), ("b", PyValue::Int(i64::MAX))])
        );
    }

    #[test]
    fn json_integer_beyond_i64_is_bigint() {
        assert_eq!(
            json_body(r#"{"a": 18446744073709551615}"#),
            dict(&[("a", PyValue::BigInt("18446744073709551615".into()))])
        );
    }

    #[test]
    fn json_integer_beyond_u64_is_float() {
        assert_eq!(
            json_body(r#"{"a": 100000000000000000000}"#),
            dict(&[("a", PyValue::Float(1e20))])
        );
    }

    #[test]
    fn json_fraction_and_exponent_are_float() {
        assert_eq!(
            json_body(r#"{"a": 0.5, "b": 1e3}"#),
            dict(&[("a", PyValue::Float(0.5)), ("b", PyValue::Float(1000.0))])
        );
    }

    #[test]
    fn json_with_utf8_bom_is_accepted() {
        assert_eq!(json_body("\u{feff}{\"a\": \"é\"}"), dict(&[("a", s("é"))]));
    }

    #[test]
    fn unterminated_json_is_malformed_with_position() {
        assert_eq!(
            malformed(json(r#"{"a": 100"#)),
            "invalid JSON body: EOF while parsing an object at line 1 column 9"
        );
    }

    #[test]
    fn invalid_json_is_malformed_with_position() {
        assert_eq!(
            malformed(json("{\n  \"a\": nope}")),
            "invalid JSON body: expected ident at line 2 column 9"
        );
    }

    #[test]
    fn json_with_trailing_characters_is_malformed() {
        assert_eq!(
            malformed(json("{} {}")),
            "invalid JSON body: trailing characters at line 1 column 4"
        );
    }

    #[test]
    fn json_with_invalid_utf8_is_malformed() {
        let message = malformed(build(
            &[("Content-Type", b"application/json")],
            None,
            b"{\"a\": \"\xff\"}",
        ));
        assert!(message.starts_with("invalid JSON body: "), "{message}");
    }

    #[test]
    fn json_nested_too_deep_is_malformed() {
        let body = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let message = malformed(json(&body));
        assert!(message.contains("recursion limit"), "{message}");
    }

    // urlencoded forms

    #[test]
    fn form_field_is_a_str() {
        assert_eq!(
            form_body("name=Ada&role=admin"),
            dict(&[("name", s("Ada")), ("role", s("admin"))])
        );
    }

    #[test]
    fn repeated_form_field_becomes_a_list() {
        assert_eq!(
            form_body("tag=a&x=1&tag=b&tag=c"),
            dict(&[
                ("tag", PyValue::List(vec![s("a"), s("b"), s("c")])),
                ("x", s("1")),
            ])
        );
    }

    #[test]
    fn plus_in_form_is_a_space() {
        assert_eq!(form_body("q=a+b+c"), dict(&[("q", s("a b c"))]));
    }

    #[test]
    fn percent_encoding_in_form_is_decoded() {
        assert_eq!(
            form_body("q=a%2Bb%26c%3d%20%C3%A9"),
            dict(&[("q", s("a+b&c= é"))])
        );
    }

    #[test]
    fn form_field_names_are_decoded() {
        assert_eq!(
            form_body("first+name=A&a%5Bb%5D=B"),
            dict(&[("first name", s("A")), ("a[b]", s("B"))])
        );
    }

    #[test]
    fn form_field_without_equals_is_empty_str() {
        assert_eq!(form_body("flag&a="), dict(&[("flag", s("")), ("a", s(""))]));
    }

    #[test]
    fn empty_form_segments_are_skipped() {
        assert_eq!(
            form_body("&a=1&&b=2&"),
            dict(&[("a", s("1")), ("b", s("2"))])
        );
    }

    #[test]
    fn empty_form_body_is_an_empty_dict() {
        assert_eq!(form_body(""), dict(&[]));
    }

    #[test]
    fn raw_utf8_in_form_is_accepted() {
        assert_eq!(form_body("name=José"), dict(&[("name", s("José"))]));
    }

    #[test]
    fn bad_percent_encoding_in_form_value_is_malformed() {
        assert_eq!(
            malformed(form("name=100%zz")),
            "invalid percent-encoding in form field \"name\": \"%\" must be followed by two hex digits"
        );
    }

    #[test]
    fn truncated_percent_encoding_in_form_value_is_malformed() {
        assert_eq!(
            malformed(form("a=%4")),
            "invalid percent-encoding in form field \"a\": \"%\" must be followed by two hex digits"
        );
        assert_eq!(
            malformed(form("a=100%")),
            "invalid percent-encoding in form field \"a\": \"%\" must be followed by two hex digits"
        );
    }

    #[test]
    fn bad_percent_encoding_in_form_name_is_malformed() {
        assert_eq!(
            malformed(form("na%g1me=1")),
            "invalid percent-encoding in form field name \"na%g1me\": \"%\" must be followed by two hex digits"
        );
    }

    #[test]
    fn invalid_utf8_after_percent_decoding_in_form_is_malformed() {
        assert_eq!(
            malformed(form("name=%FF")),
            "form field \"name\" is not valid UTF-8 once percent-decoded"
        );
    }

    #[test]
    fn invalid_utf8_in_form_name_is_malformed() {
        assert_eq!(
            malformed(form("%C3=1")),
            "form field name \"%C3\" is not valid UTF-8 once percent-decoded"
        );
    }

    #[test]
    fn raw_invalid_utf8_in_form_is_malformed() {
        let result = build(
            &[("Content-Type", b"application/x-www-form-urlencoded")],
            None,
            b"a=\xff",
        );
        assert_eq!(
            malformed(result),
            "form field \"a\" is not valid UTF-8 once percent-decoded"
        );
    }

    // query string

    #[test]
    fn query_parameters_are_merged() {
        let value = build(
            &[("Content-Type", b"application/json")],
            Some("page=2&q=a+b"),
            b"",
        );
        assert_eq!(
            value,
            Ok(dict(&[
                ("page", s("2")),
                ("q", s("a b")),
                ("Content-Type", s("application/json")),
            ]))
        );
    }

    #[test]
    fn repeated_query_parameter_becomes_a_list() {
        let value = build(
            &[("Content-Type", b"application/json")],
            Some("id=1&id=2"),
            b"",
        );
        assert_eq!(
            value.map(|v| v.get("id").cloned()),
            Ok(Some(PyValue::List(vec![s("1"), s("2")])))
        );
    }

    #[test]
    fn empty_query_string_adds_nothing() {
        let value = build(&[("Content-Type", b"application/json")], Some(""), b"");
        assert_eq!(value, Ok(dict(&[("Content-Type", s("application/json"))])));
    }

    #[test]
    fn bad_percent_encoding_in_query_is_malformed() {
        assert_eq!(
            malformed(build(
                &[("Content-Type", b"application/json")],
                Some("token=%%41"),
                b"{}"
            )),
            "invalid percent-encoding in query parameter \"token\": \"%\" must be followed by two hex digits"
        );
    }

    #[test]
    fn invalid_utf8_in_query_is_malformed() {
        assert_eq!(
            malformed(build(
                &[("Content-Type", b"application/json")],
                Some("q=%E9"),
                b"{}"
            )),
            "query parameter \"q\" is not valid UTF-8 once percent-decoded"
        );
    }

    // precedence

    #[test]
    fn header_wins_over_query_on_name_clash() {
        let value = build(
            &[("Content-Type", b"application/json"), ("x-a", b"header")],
            Some("X-A=query"),
            b"",
        );
        assert_eq!(
            value,
            Ok(dict(&[
                ("X-A", s("header")),
                ("Content-Type", s("application/json")),
            ]))
        );
    }

    #[test]
    fn body_wins_over_header_on_name_clash() {
        let value = build(
            &[("Content-Type", b"application/json"), ("X-A", b"header")],
            None,
            br#"{"X-A": "body", "b": 1}"#,
        );
        assert_eq!(
            value,
            Ok(dict(&[
                ("Content-Type", s("application/json")),
                ("X-A", s("body")),
                ("b", PyValue::Int(1)),
            ]))
        );
    }

    #[test]
    fn body_wins_over_query_on_name_clash() {
        let value = build(
            &[("Content-Type", b"application/x-www-form-urlencoded")],
            Some("a=query&a=query2&q=1"),
            b"a=body",
        );
        assert_eq!(
            value,
            Ok(dict(&[
                ("a", s("body")),
                ("q", s("1")),
                ("Content-Type", s("application/x-www-form-urlencoded")),
            ]))
        );
    }

    #[test]
    fn json_body_key_replaces_header_entirely() {
        let value = build(
            &[("Content-Type", b"application/json")],
            None,
            br#"{"Content-Type": {"nested": true}}"#,
        );
        assert_eq!(
            value,
            Ok(dict(&[(
                "Content-Type",
                dict(&[("nested", PyValue::Bool(true))])
            )]))
        );
    }

    #[test]
    fn non_object_json_body_clashes_on_body_key_only() {
        let value = build(
            &[("Content-Type", b"application/json")],
            Some("body=q"),
            b"[]",
        );
        assert_eq!(
            value,
            Ok(dict(&[
                ("body", PyValue::List(vec![])),
                ("Content-Type", s("application/json")),
            ]))
        );
    }

    // multipart

    #[test]
    fn multipart_text_part_is_a_str() {
        let body = format!("{}{}{}", text_part("a", "1"), text_part("b", "é x"), end());
        assert_eq!(
            multipart_body(&body),
            dict(&[("a", s("1")), ("b", s("é x"))])
        );
    }

    #[test]
    fn multipart_file_part_is_a_dict_with_bytes_content() {
        let body = format!(
            "{}{}",
            file_part("cv", "cv.pdf", "application/pdf", "%PDF-1.4"),
            end()
        );
        assert_eq!(
            multipart_body(&body),
            dict(&[("cv", file("cv.pdf", "application/pdf", b"%PDF-1.4"))])
        );
    }

    #[test]
    fn multipart_file_content_may_be_binary() {
        let mut body = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.bin\"\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(b"\x00\xff\r\n\xfe");
        body.extend_from_slice(format!("\r\n{}", end()).as_bytes());
        let value = multipart_bytes(&body).expect("valid multipart body");
        assert_eq!(
            value.get("f"),
            Some(&file(
                "a.bin",
                "application/octet-stream",
                b"\x00\xff\r\n\xfe"
            ))
        );
    }

    #[test]
    fn multipart_file_part_without_content_type_is_octet_stream() {
        let body = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nhi\r\n{}",
            end()
        );
        assert_eq!(
            multipart_body(&body),
            dict(&[("f", file("a.txt", "application/octet-stream", b"hi"))])
        );
    }

    #[test]
    fn multipart_file_part_content_type_is_kept_as_sent() {
        let body = format!(
            "{}{}",
            file_part("f", "a.txt", "text/plain; charset=latin-1", "hi"),
            end()
        );
        assert_eq!(
            multipart_body(&body),
            dict(&[("f", file("a.txt", "text/plain; charset=latin-1", b"hi"))])
        );
    }

    #[test]
    fn multipart_part_with_empty_filename_is_a_file_part() {
        let body = format!(
            "{}{}",
            file_part("f", "", "application/octet-stream", ""),
            end()
        );
        assert_eq!(
            multipart_body(&body),
            dict(&[("f", file("", "application/octet-stream", b""))])
        );
    }

    #[test]
    fn repeated_multipart_text_part_becomes_a_list() {
        let body = format!(
            "{}{}{}{}",
            text_part("t", "a"),
            text_part("u", "x"),
            text_part("t", "b"),
            end()
        );
        assert_eq!(
            multipart_body(&body),
            dict(&[("t", PyValue::List(vec![s("a"), s("b")])), ("u", s("x")),])
        );
    }

    #[test]
    fn repeated_file_parts_become_a_list_of_dicts() {
        let body = format!(
            "{}{}{}",
            file_part("docs", "a.txt", "text/plain", "A"),
            file_part("docs", "b.csv", "text/csv", "B"),
            end()
        );
        assert_eq!(
            multipart_body(&body),
            dict(&[(
                "docs",
                PyValue::List(vec![
                    file("a.txt", "text/plain", b"A"),
                    file("b.csv", "text/csv", b"B"),
                ])
            )])
        );
    }

    #[test]
    fn multipart_boundary_may_be_quoted_and_parameter_name_any_case() {
        let body = format!("{}{}", text_part("a", "1"), end());
        let value = build(
            &[(
                "Content-Type",
                format!("Multipart/Form-Data; charset=utf-8; BOUNDARY=\"{BOUNDARY}\"").as_bytes(),
            )],
            None,
            body.as_bytes(),
        );
        assert_eq!(value.map(|v| v.get("a").cloned()), Ok(Some(s("1"))));
    }

    #[test]
    fn multipart_body_wins_over_query_and_headers() {
        let body = format!("{}{}", text_part("X-A", "body"), end());
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        let value = build(
            &[
                ("Content-Type", content_type.as_bytes()),
                ("X-A", b"header"),
            ],
            Some("X-A=query"),
            body.as_bytes(),
        );
        assert_eq!(value.map(|v| v.get("X-A").cloned()), Ok(Some(s("body"))));
    }

    #[test]
    fn multipart_without_boundary_is_malformed() {
        assert_eq!(
            malformed(build(
                &[("Content-Type", b"multipart/form-data")],
                None,
                b"--x--\r\n"
            )),
            "multipart/form-data needs a boundary parameter"
        );
    }

    #[test]
    fn multipart_with_empty_boundary_is_malformed() {
        assert_eq!(
            malformed(build(
                &[("Content-Type", b"multipart/form-data; boundary=\"\"")],
                None,
                b"--x--\r\n"
            )),
            "multipart/form-data needs a boundary parameter"
        );
    }

    #[test]
    fn truncated_multipart_is_malformed() {
        let body = text_part("a", "1");
        let message = malformed(multipart(&body[..body.len() - 4]));
        assert!(message.starts_with("broken multipart body: "), "{message}");
    }

    #[test]
    fn multipart_without_closing_boundary_is_malformed() {
        assert_eq!(
            malformed(multipart(&text_part("a", "1"))),
            "broken multipart body: part \"a\" is cut off before the next boundary"
        );
    }

    #[test]
    fn multipart_part_with_invalid_header_is_malformed() {
        let body = format!("--{BOUNDARY}\r\nBad Header: x\r\n\r\nx\r\n{}", end());
        assert_eq!(
            malformed(multipart(&body)),
            "broken multipart body: cannot read a part's headers (invalid header name)"
        );
    }

    #[test]
    fn multipart_preamble_is_ignored() {
        let body = format!("preamble\r\n{}{}", text_part("a", "1"), end());
        assert_eq!(multipart_body(&body), dict(&[("a", s("1"))]));
    }

    #[test]
    fn multipart_with_wrong_boundary_is_malformed() {
        let body = format!("{}{}", text_part("a", "1"), end()).replace(BOUNDARY, "other");
        assert_eq!(
            malformed(multipart(&body)),
            "broken multipart body: it ends before the closing boundary \"--XyZ123--\" (is the boundary parameter right?)"
        );
    }

    #[test]
    fn empty_multipart_body_is_malformed() {
        let message = malformed(multipart(""));
        assert!(message.starts_with("broken multipart body: "), "{message}");
    }

    #[test]
    fn multipart_with_unterminated_part_headers_is_malformed() {
        let body = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"a\"");
        let message = malformed(multipart(&body));
        assert!(message.starts_with("broken multipart body: "), "{message}");
    }

    #[test]
    fn multipart_with_only_closing_boundary_is_an_empty_form() {
        assert_eq!(multipart_body(&end()), dict(&[]));
    }

    #[test]
    fn multipart_part_without_name_is_malformed() {
        let body = format!(
            "{}--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nx\r\n{}",
            text_part("a", "1"),
            end()
        );
        assert_eq!(
            malformed(multipart(&body)),
            "multipart part #2 has no name in its Content-Disposition header"
        );
    }

    #[test]
    fn multipart_text_part_with_invalid_utf8_is_malformed() {
        let mut body =
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\n")
                .into_bytes();
        body.extend_from_slice(b"\xff\xfe");
        body.extend_from_slice(format!("\r\n{}", end()).as_bytes());
        assert_eq!(
            malformed(multipart_bytes(&body)),
            "multipart field \"t\" is not valid UTF-8 (send binary data as a file part, with a filename)"
        );
    }

    // helpers

    #[test]
    fn content_type_parameters_are_parsed() {
        assert_eq!(
            parse_content_type(r#" Multipart/Form-Data ; boundary="a;\"b" ;charset=UTF-8;flag"#),
            (
                "multipart/form-data".to_string(),
                vec![
                    ("boundary".to_string(), "a;\"b".to_string()),
                    ("charset".to_string(), "UTF-8".to_string()),
                    ("flag".to_string(), String::new()),
                ]
            )
        );
    }

    #[test]
    fn long_names_are_cut_in_error_messages() {
        let name = "n".repeat(200);
        let message = malformed(form(&format!("{name}=%")));
        assert!(
            message.contains(&format!("\"{}…\"", "n".repeat(64))),
            "{message}"
        );
    }
}
