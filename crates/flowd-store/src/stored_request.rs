//! The requests of hook executions, kept for replay: what the store writes ([`StoredRequest`],
//! one payload per request — a small JSON head naming the method, path, query string and
//! headers, then the body's bytes as received) and what it reads back ([`RequestParts`]).
//!
//! The payload is one value so that a store with a secret key seals it with one AEAD call, like
//! a secret setting (`crate::secrets`): HR data is personal data.

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

/// How an encoded payload starts (before it is sealed, if it is).
const PAYLOAD_MAGIC: &[u8] = b"flowd-request-v1\n";

/// A hook call as it was received, in clear.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestParts {
    pub method: String,
    /// The path as received (the hook URL's, token included).
    pub path: String,
    /// The raw query string, without `?` (empty when there is none).
    pub query_string: String,
    /// The headers in the order received; values as their bytes.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// A hook call as received, borrowed: what [`StoredRequest::new`] encodes.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query_string: &'a str,
    pub headers: &'a [(String, Vec<u8>)],
    pub body: &'a [u8],
}

/// A request to store with its execution ([`crate::StoreWrite::PutStoredRequest`]), encoded
/// once on the caller's side; the store seals the payload when it has a secret key.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRequest {
    pub execution_id: String,
    pub workflow_id: String,
    pub stored_at: i64,
    /// The request's size as counted against the cap: headers, query string and body.
    pub size: u64,
    pub(crate) payload: Vec<u8>,
}

/// The head of a payload: everything but the body. Header values are Latin-1 text (each byte
/// one character), which JSON keeps whatever the bytes are.
#[derive(Serialize, Deserialize)]
struct Head<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: Vec<(&'a str, String)>,
}

impl StoredRequest {
    /// The request of `execution_id` (of `workflow_id`), encoded for the store.
    pub fn new(
        execution_id: &str,
        workflow_id: &str,
        stored_at: i64,
        request: &RequestView<'_>,
    ) -> StoredRequest {
        let RequestView {
            method,
            path,
            query_string,
            headers,
            body,
        } = *request;
        let head = Head {
            method,
            path,
            query: query_string,
            headers: headers
                .iter()
                .map(|(name, value)| (name.as_str(), latin1_text(value)))
                .collect(),
        };
        // Strings and pairs of strings always serialise.
        let head = serde_json::to_vec(&head).unwrap_or_default();
        let mut payload = Vec::with_capacity(PAYLOAD_MAGIC.len() + 4 + head.len() + body.len());
        payload.extend_from_slice(PAYLOAD_MAGIC);
        payload.extend_from_slice(&(head.len() as u32).to_le_bytes());
        payload.extend_from_slice(&head);
        payload.extend_from_slice(body);
        StoredRequest {
            execution_id: execution_id.to_string(),
            workflow_id: workflow_id.to_string(),
            stored_at,
            size: request_size(query_string, headers, body.len()),
            payload,
        }
    }
}

/// What a request weighs against the size cap: its headers (names and values), query string
/// and body.
pub fn request_size(query_string: &str, headers: &[(String, Vec<u8>)], body_len: usize) -> u64 {
    let headers: usize = headers
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum();
    (headers + query_string.len() + body_len) as u64
}

/// The request a payload (opened) holds. `Corrupt` when it is not one.
pub(crate) fn decode(execution_id: &str, payload: &[u8]) -> Result<RequestParts> {
    let corrupt =
        |why: &str| StoreError::Corrupt(format!("the stored request of {execution_id} {why}"));
    let rest = payload
        .strip_prefix(PAYLOAD_MAGIC)
        .ok_or_else(|| corrupt("is not an encoded request"))?;
    if rest.len() < 4 {
        return Err(corrupt("is cut short"));
    }
    let (length, rest) = rest.split_at(4);
    let length = u32::from_le_bytes([length[0], length[1], length[2], length[3]]) as usize;
    if rest.len() < length {
        return Err(corrupt("is cut short"));
    }
    let (head, body) = rest.split_at(length);
    let head: Head<'_> =
        serde_json::from_slice(head).map_err(|_| corrupt("has an unreadable head"))?;
    let headers = head
        .headers
        .into_iter()
        .map(|(name, value)| Ok((name.to_string(), latin1_bytes(&value)?)))
        .collect::<std::result::Result<_, ()>>()
        .map_err(|()| corrupt("has a header value beyond Latin-1"))?;
    Ok(RequestParts {
        method: head.method.to_string(),
        path: head.path.to_string(),
        query_string: head.query.to_string(),
        headers,
        body: body.to_vec(),
    })
}

fn latin1_text(bytes: &[u8]) -> String {
    bytes.iter().map(|&byte| char::from(byte)).collect()
}

fn latin1_bytes(text: &str) -> std::result::Result<Vec<u8>, ()> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).map_err(|_| ()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_decodes_to_what_was_encoded_whatever_its_bytes() {
        let headers = vec![
            ("content-type".to_string(), b"application/json".to_vec()),
            ("x-raw".to_string(), vec![0xff, 0x00, b'a', 0xc3, 0xa9]),
        ];
        let body = [0u8, 1, 2, 0xff, b'{'];
        let view = RequestView {
            method: "POST",
            path: "/teams/t/w",
            query_string: "a=1&b",
            headers: &headers,
            body: &body,
        };
        let stored = StoredRequest::new("e1", "w1", 5, &view);
        let parts = decode("e1", &stored.payload).unwrap();
        assert_eq!(
            parts,
            RequestParts {
                method: "POST".into(),
                path: "/teams/t/w".into(),
                query_string: "a=1&b".into(),
                headers,
                body: body.to_vec(),
            }
        );
    }

    #[test]
    fn the_size_counts_headers_query_and_body() {
        let headers = vec![("ab".to_string(), b"cde".to_vec())];
        assert_eq!(request_size("q=1", &headers, 10), 5 + 3 + 10);
    }

    #[test]
    fn a_payload_cut_short_is_corrupt() {
        let view = RequestView {
            method: "POST",
            path: "/",
            query_string: "",
            headers: &[],
            body: b"body",
        };
        let stored = StoredRequest::new("e1", "w1", 5, &view);
        let cut = &stored.payload[..PAYLOAD_MAGIC.len() + 6];
        assert!(matches!(decode("e1", cut), Err(StoreError::Corrupt(_))));
    }
}
