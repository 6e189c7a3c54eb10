//! How a workflow's return value becomes the HTTP response (CONTRACT.md §2 "The HTTP response").

use crate::PyValue;

/// A response decided by the workflow's return value.
#[derive(Debug, Clone, PartialEq)]
pub struct HookResponse {
    pub status: u16,
    /// Header names and values, as the function gave them, minus the server-owned ones;
    /// `Content-Type: text/plain; charset=utf-8` added when the function gave none.
    pub headers: Vec<(String, String)>,
    /// Empty for 204 and 304.
    pub body: String,
    /// Why some of the function's headers were not sent (over [`HeaderCaps`]), for the
    /// execution's warnings.
    pub warning: Option<String>,
}

/// The most a function's response headers may hold; headers beyond are dropped, in the dict's
/// order (a header over the per-header size is dropped alone, the others are kept until the
/// count or the total is reached). A size is the name's bytes plus the value's characters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeaderCaps {
    pub count: usize,
    pub bytes_each: usize,
    pub bytes_total: usize,
}

/// 64 headers, 8 KiB each, 64 KiB in all. With the headers the server adds, a response stays
/// under the 100 headers many HTTP clients accept (hyper's default among them).
pub const HEADER_CAPS: HeaderCaps = HeaderCaps {
    count: 64,
    bytes_each: 8 << 10,
    bytes_total: 64 << 10,
};

/// The outcome of mapping a return value.
#[derive(Debug, Clone, PartialEq)]
pub enum ReturnMapping {
    /// The return value is a valid response.
    Custom(HookResponse),
    /// The return value is not a response: the caller gets the default response and the
    /// execution records `warning` — unless the function returned `None`, the common case of a
    /// workflow that does not shape its response, which gives `warning: None`.
    Default { warning: Option<String> },
}

/// Headers the server owns: never taken from the function (compared case-insensitively).
pub const SERVER_OWNED_HEADERS: [&str; 3] = ["content-length", "transfer-encoding", "connection"];

/// Maps a return value (as reduced by the Python runner: only the keys `status_code`, `body` and
/// `headers` of a dict are kept; values that are not plain types arrive as
/// `PyValue::Tuple([Str("<opaque>"), Str(type name)])`, and a return value that is not a dict or
/// `None` arrives as such an opaque tuple too) to the response.
///
/// Valid: a dict with `status_code` an `Int` in 200..=599 (a `Bool` or a `Str` does not count),
/// `body` a `Str`, `headers` absent or a dict of `Str` to `Str` where every name is a valid HTTP
/// token and every value a valid header value (visible ASCII or Latin-1 text, spaces and tabs, no
/// CR/LF/NUL). Anything else → `Default` with a warning that says why, e.g.
/// "the return value was not used: status_code is a bool, not an int in 200-599".
///
/// Details: `headers: None` counts as absent. Header values may hold any character from U+0020
/// to U+00FF except DEL (U+007F), and tabs; the server sends them as Latin-1 bytes. Server-owned
/// headers ([`SERVER_OWNED_HEADERS`]) are checked like the others, then dropped. The checks run
/// in the order `status_code`, `body`, `headers` (in the dict's order), and the warning names
/// the first problem found. Names and values quoted in warnings are cut after 64 characters.
/// Valid headers over [`HEADER_CAPS`] are dropped, and the response's `warning` says so.
pub fn map_return(ret: &PyValue) -> ReturnMapping {
    match custom_response(ret) {
        Ok(Some(response)) => ReturnMapping::Custom(response),
        Ok(None) => ReturnMapping::Default { warning: None },
        Err(why) => ReturnMapping::Default {
            warning: Some(format!("the return value was not used: {why}")),
        },
    }
}

/// `Ok(None)` for `None`; `Err(why the value is not a response)`.
fn custom_response(ret: &PyValue) -> Result<Option<HookResponse>, String> {
    let items = match ret {
        PyValue::None => return Ok(None),
        PyValue::Dict(items) => items,
        other => return Err(format!("it is {}, not a dict", a_type(other))),
    };
    let get = |key: &str| {
        items.iter().find_map(|(k, v)| match k {
            PyValue::Str(k) if k == key => Some(v),
            _ => None,
        })
    };

    let status = match get("status_code") {
        None => return Err("it has no \"status_code\"".to_string()),
        Some(PyValue::Int(code)) => match u16::try_from(*code) {
            Ok(code) if (200..=599).contains(&code) => code,
            _ => return Err(format!("status_code {code} is outside 200-599")),
        },
        Some(PyValue::BigInt(code)) => {
            return Err(format!("status_code {} is outside 200-599", cut(code)))
        }
        Some(other) => {
            return Err(format!(
                "status_code is {}, not an int in 200-599",
                a_type(other)
            ))
        }
    };

    let body = match get("body") {
        None => return Err("it has no \"body\"".to_string()),
        Some(PyValue::Str(body)) => body,
        Some(other) => return Err(format!("body is {}, not a str", a_type(other))),
    };

    let mut headers = Vec::new();
    match get("headers") {
        None | Some(PyValue::None) => {}
        Some(PyValue::Dict(given)) => {
            for (name, value) in given {
                let PyValue::Str(name) = name else {
                    return Err(format!("a header name is {}, not a str", a_type(name)));
                };
                let PyValue::Str(value) = value else {
                    return Err(format!(
                        "headers[{}] is {}, not a str",
                        quote(name),
                        a_type(value)
                    ));
                };
                if !is_valid_header_name(name) {
                    return Err(format!(
                        "header name {} is not a valid HTTP header name",
                        quote(name)
                    ));
                }
                if let Some(bad) = value.chars().find(|&c| !is_valid_header_value_char(c)) {
                    return Err(format!(
                        "headers[{}] is not a valid HTTP header value: it contains {}",
                        quote(name),
                        describe_char(bad)
                    ));
                }
                let server_owned = SERVER_OWNED_HEADERS
                    .iter()
                    .any(|owned| owned.eq_ignore_ascii_case(name));
                if !server_owned {
                    headers.push((name.clone(), value.clone()));
                }
            }
        }
        Some(other) => return Err(format!("headers is {}, not a dict", a_type(other))),
    }
    let (mut headers, warning) = capped(headers, HEADER_CAPS);
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        headers.push((
            "Content-Type".to_string(),
            "text/plain; charset=utf-8".to_string(),
        ));
    }

    let body = if status == 204 || status == 304 {
        String::new()
    } else {
        body.clone()
    };
    Ok(Some(HookResponse {
        status,
        headers,
        body,
        warning,
    }))
}

/// The headers within `caps`, and a warning naming what was dropped, if anything was.
fn capped(
    headers: Vec<(String, String)>,
    caps: HeaderCaps,
) -> (Vec<(String, String)>, Option<String>) {
    let mut kept = Vec::new();
    let mut total = 0;
    let mut dropped = 0;
    let mut first_dropped = None;
    for (name, value) in headers {
        let size = name.len() + value.chars().count();
        if size <= caps.bytes_each && kept.len() < caps.count && total + size <= caps.bytes_total {
            total += size;
            kept.push((name, value));
        } else {
            dropped += 1;
            first_dropped.get_or_insert(name);
        }
    }
    let warning = first_dropped.map(|name| {
        format!(
            "{dropped} response header(s) not sent, the first {}: over the limits of {} headers, \
             {} bytes each, {} bytes in all",
            quote(&name),
            caps.count,
            caps.bytes_each,
            caps.bytes_total
        )
    });
    (kept, warning)
}

/// "a list", "an int", "a Response" (the type name an opaque value carries), "None".
fn a_type(value: &PyValue) -> String {
    let name = match value {
        PyValue::None => return "None".to_string(),
        PyValue::Tuple(items) => match items.as_slice() {
            [PyValue::Str(marker), PyValue::Str(type_name)] if marker == "<opaque>" => {
                cut(type_name)
            }
            _ => value.type_name().to_string(),
        },
        other => other.type_name().to_string(),
    };
    let article = match name.chars().next() {
        Some(c) if "aeiouAEIOU".contains(c) => "an",
        _ => "a",
    };
    format!("{article} {name}")
}

/// An RFC 9110 token: one or more of ``!#$%&'*+-.^_`|~``, digits and ASCII letters.
fn is_valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Tab, space, visible ASCII, and the Latin-1 range U+0080..=U+00FF (`obs-text`).
fn is_valid_header_value_char(c: char) -> bool {
    matches!(c, '\t' | ' '..='~' | '\u{80}'..='\u{ff}')
}

fn describe_char(c: char) -> &'static str {
    match c {
        '\r' | '\n' => "a line break",
        '\0' => "a NUL character",
        c if c.is_control() => "a control character",
        _ => "a character outside Latin-1",
    }
}

/// `text` cut after 64 characters.
fn cut(text: &str) -> String {
    const MAX_CHARS: usize = 64;
    match text.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// `text` in double quotes (JSON string syntax), cut after 64 characters.
fn quote(text: &str) -> String {
    serde_json::Value::String(cut(text)).to_string()
}

/// The status of the answer to a call refused before running (a paused workflow, no active
/// version, every slot and the queue taken): the caller is to come back later. The server sends
/// it, and the refused execution's record keeps it as the status sent.
pub const REFUSED_STATUS: u16 = 503;

/// The body of the default response: `{"status": "success", "execution_id": "<id>"}`.
pub fn default_success_body(execution_id: &str) -> String {
    serde_json::json!({"status": "success", "execution_id": execution_id}).to_string()
}

/// The body of a failed execution's response: `{"status": <status>, "execution_id", "error"}`
/// where `status` is `error`, `timeout` or `killed`, and `error` only the exception type (never
/// its message).
pub fn failure_body(status: &str, execution_id: &str, error_type: Option<&str>) -> String {
    let mut body = serde_json::json!({"status": status, "execution_id": execution_id});
    if let Some(error_type) = error_type {
        body["error"] = serde_json::Value::String(error_type.to_string());
    }
    body.to_string()
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

    fn opaque(type_name: &str) -> PyValue {
        PyValue::Tuple(vec![s("<opaque>"), s(type_name)])
    }

    fn ret(status: PyValue, body: PyValue, headers: Option<PyValue>) -> PyValue {
        let mut items = vec![("status_code", status), ("body", body)];
        if let Some(headers) = headers {
            items.push(("headers", headers));
        }
        dict(&items)
    }

    fn with_headers(headers: &[(&str, PyValue)]) -> PyValue {
        ret(PyValue::Int(200), s("ok"), Some(dict(headers)))
    }

    fn custom(value: &PyValue) -> HookResponse {
        match map_return(value) {
            ReturnMapping::Custom(response) => response,
            other => panic!("expected a custom response, got {other:?}"),
        }
    }

    fn warning(value: &PyValue) -> String {
        match map_return(value) {
            ReturnMapping::Default {
                warning: Some(warning),
            } => warning,
            other => panic!("expected a warning, got {other:?}"),
        }
    }

    fn headers(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn none_gives_default_without_warning() {
        assert_eq!(
            map_return(&PyValue::None),
            ReturnMapping::Default { warning: None }
        );
    }

    #[test]
    fn valid_dict_is_sent_as_it_is() {
        let value = ret(
            PyValue::Int(201),
            s("created"),
            Some(dict(&[
                ("Content-Type", s("application/json")),
                ("X-Trace", s("abc")),
            ])),
        );
        assert_eq!(
            map_return(&value),
            ReturnMapping::Custom(HookResponse {
                status: 201,
                headers: headers(&[("Content-Type", "application/json"), ("X-Trace", "abc")]),
                body: "created".to_string(),
                warning: None,
            })
        );
    }

    fn numbered_headers(count: usize, value: &str) -> PyValue {
        let names: Vec<String> = (0..count).map(|i| format!("X-H{i}")).collect();
        let items: Vec<(&str, PyValue)> = names.iter().map(|n| (n.as_str(), s(value))).collect();
        with_headers(&items)
    }

    #[test]
    fn headers_beyond_the_count_are_dropped_with_a_warning() {
        let response = custom(&numbered_headers(HEADER_CAPS.count + 5, "v"));
        // The kept ones, and the Content-Type added for want of one.
        assert_eq!(response.headers.len(), HEADER_CAPS.count + 1);
        assert_eq!(response.headers[HEADER_CAPS.count - 1].0, "X-H63");
        let warning = response.warning.expect("a warning");
        assert!(
            warning.starts_with("5 response header(s) not sent, the first \"X-H64\""),
            "{warning}"
        );
    }

    #[test]
    fn a_header_over_the_size_of_one_is_dropped_alone() {
        let big = "v".repeat(HEADER_CAPS.bytes_each);
        let response = custom(&with_headers(&[("X-Big", s(&big)), ("X-Small", s("1"))]));
        assert_eq!(
            response.headers,
            headers(&[
                ("X-Small", "1"),
                ("Content-Type", "text/plain; charset=utf-8")
            ])
        );
        assert!(response.warning.expect("a warning").contains("\"X-Big\""));
    }

    #[test]
    fn headers_beyond_the_total_size_are_dropped() {
        let value = "v".repeat(HEADER_CAPS.bytes_each - 8);
        let response = custom(&numbered_headers(10, &value));
        let kept_size: usize = response
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len())
            .sum();
        assert!(response.headers.len() < 10);
        assert!(kept_size <= HEADER_CAPS.bytes_total + 64, "{kept_size}");
        assert!(response.warning.is_some());
    }

    #[test]
    fn headers_within_the_caps_give_no_warning() {
        let response = custom(&numbered_headers(HEADER_CAPS.count, "v"));
        assert_eq!(response.warning, None);
    }

    #[test]
    fn missing_content_type_gets_text_plain_utf8() {
        let response = custom(&ret(PyValue::Int(200), s("hi"), None));
        assert_eq!(
            response.headers,
            headers(&[("Content-Type", "text/plain; charset=utf-8")])
        );
    }

    #[test]
    fn content_type_is_recognised_case_insensitively() {
        let response = custom(&with_headers(&[("content-TYPE", s("text/html"))]));
        assert_eq!(response.headers, headers(&[("content-TYPE", "text/html")]));
    }

    #[test]
    fn headers_keep_their_names_and_order() {
        let response = custom(&with_headers(&[
            ("x-b", s("2")),
            ("X-A", s("1")),
            ("Content-Type", s("text/csv")),
        ]));
        assert_eq!(
            response.headers,
            headers(&[("x-b", "2"), ("X-A", "1"), ("Content-Type", "text/csv")])
        );
    }

    #[test]
    fn none_headers_count_as_absent() {
        let response = custom(&ret(PyValue::Int(200), s("hi"), Some(PyValue::None)));
        assert_eq!(
            response.headers,
            headers(&[("Content-Type", "text/plain; charset=utf-8")])
        );
    }

    #[test]
    fn empty_headers_dict_is_valid() {
        let response = custom(&ret(PyValue::Int(200), s("hi"), Some(dict(&[]))));
        assert_eq!(
            response.headers,
            headers(&[("Content-Type", "text/plain; charset=utf-8")])
        );
    }

    #[test]
    fn server_owned_headers_are_dropped_case_insensitively() {
        let response = custom(&with_headers(&[
            ("Content-Length", s("999")),
            ("transfer-encoding", s("chunked")),
            ("CONNECTION", s("close")),
            ("X-Kept", s("yes")),
        ]));
        assert_eq!(
            response.headers,
            headers(&[
                ("X-Kept", "yes"),
                ("Content-Type", "text/plain; charset=utf-8")
            ])
        );
    }

    #[test]
    fn body_is_dropped_for_204() {
        let response = custom(&ret(PyValue::Int(204), s("ignored"), None));
        assert_eq!((response.status, response.body.as_str()), (204, ""));
    }

    #[test]
    fn body_is_dropped_for_304() {
        let response = custom(&ret(PyValue::Int(304), s("ignored"), None));
        assert_eq!((response.status, response.body.as_str()), (304, ""));
    }

    #[test]
    fn body_is_kept_for_other_statuses() {
        let response = custom(&ret(PyValue::Int(500), s("oops"), None));
        assert_eq!((response.status, response.body.as_str()), (500, "oops"));
    }

    #[test]
    fn empty_body_is_valid() {
        assert_eq!(custom(&ret(PyValue::Int(200), s(""), None)).body, "");
    }

    #[test]
    fn status_code_bounds_are_inclusive() {
        assert_eq!(custom(&ret(PyValue::Int(200), s(""), None)).status, 200);
        assert_eq!(custom(&ret(PyValue::Int(599), s(""), None)).status, 599);
    }

    #[test]
    fn other_keys_are_ignored() {
        let value = dict(&[
            ("status_code", PyValue::Int(202)),
            ("statusCode", PyValue::Int(500)),
            ("body", s("ok")),
            ("isBase64Encoded", PyValue::Bool(true)),
        ]);
        assert_eq!(custom(&value).status, 202);
    }

    #[test]
    fn non_str_keys_are_ignored() {
        let value = PyValue::Dict(vec![
            (PyValue::Int(1), s("x")),
            (s("status_code"), PyValue::Int(200)),
            (s("body"), s("ok")),
        ]);
        assert_eq!(custom(&value).body, "ok");
    }

    #[test]
    fn list_is_not_used() {
        assert_eq!(
            warning(&PyValue::List(vec![])),
            "the return value was not used: it is a list, not a dict"
        );
    }

    #[test]
    fn str_is_not_used() {
        assert_eq!(
            warning(&s("ok")),
            "the return value was not used: it is a str, not a dict"
        );
    }

    #[test]
    fn int_is_not_used() {
        assert_eq!(
            warning(&PyValue::Int(200)),
            "the return value was not used: it is an int, not a dict"
        );
    }

    #[test]
    fn opaque_value_is_reported_with_its_type_name() {
        assert_eq!(
            warning(&opaque("Response")),
            "the return value was not used: it is a Response, not a dict"
        );
        assert_eq!(
            warning(&opaque("tuple")),
            "the return value was not used: it is a tuple, not a dict"
        );
    }

    #[test]
    fn plain_tuple_is_not_used() {
        assert_eq!(
            warning(&PyValue::Tuple(vec![s("ok"), PyValue::Int(200)])),
            "the return value was not used: it is a tuple, not a dict"
        );
    }

    #[test]
    fn dict_without_status_code_is_not_used() {
        assert_eq!(
            warning(&dict(&[("body", s("ok"))])),
            "the return value was not used: it has no \"status_code\""
        );
    }

    #[test]
    fn dict_without_body_is_not_used() {
        assert_eq!(
            warning(&dict(&[("status_code", PyValue::Int(200))])),
            "the return value was not used: it has no \"body\""
        );
    }

    #[test]
    fn empty_dict_is_not_used() {
        assert_eq!(
            warning(&dict(&[])),
            "the return value was not used: it has no \"status_code\""
        );
    }

    #[test]
    fn bool_status_code_is_not_used() {
        assert_eq!(
            warning(&ret(PyValue::Bool(true), s("ok"), None)),
            "the return value was not used: status_code is a bool, not an int in 200-599"
        );
    }

    #[test]
    fn str_status_code_is_not_used() {
        assert_eq!(
            warning(&ret(s("200"), s("ok"), None)),
            "the return value was not used: status_code is a str, not an int in 200-599"
        );
    }

    #[test]
    fn float_status_code_is_not_used() {
        assert_eq!(
            warning(&ret(PyValue::Float(200.0), s("ok"), None)),
            "the return value was not used: status_code is a float, not an int in 200-599"
        );
    }

    #[test]
    fn opaque_status_code_is_reported_with_its_type_name() {
        assert_eq!(
            warning(&ret(opaque("HTTPStatus"), s("ok"), None)),
            "the return value was not used: status_code is a HTTPStatus, not an int in 200-599"
        );
    }

    #[test]
    fn status_code_above_599_is_not_used() {
        assert_eq!(
            warning(&ret(PyValue::Int(700), s("ok"), None)),
            "the return value was not used: status_code 700 is outside 200-599"
        );
    }

    #[test]
    fn status_code_below_200_is_not_used() {
        assert_eq!(
            warning(&ret(PyValue::Int(199), s("ok"), None)),
            "the return value was not used: status_code 199 is outside 200-599"
        );
        assert_eq!(
            warning(&ret(PyValue::Int(-200), s("ok"), None)),
            "the return value was not used: status_code -200 is outside 200-599"
        );
    }

    #[test]
    fn status_code_that_wraps_u16_is_not_used() {
        assert_eq!(
            warning(&ret(PyValue::Int(65736), s("ok"), None)),
            "the return value was not used: status_code 65736 is outside 200-599"
        );
    }

    #[test]
    fn big_int_status_code_is_not_used() {
        assert_eq!(
            warning(&ret(
                PyValue::BigInt("100000000000000000000".into()),
                s("ok"),
                None
            )),
            "the return value was not used: status_code 100000000000000000000 is outside 200-599"
        );
    }

    #[test]
    fn bytes_body_is_not_used() {
        assert_eq!(
            warning(&ret(
                PyValue::Int(200),
                PyValue::Bytes(b"ok".to_vec()),
                None
            )),
            "the return value was not used: body is a bytes, not a str"
        );
    }

    #[test]
    fn dict_body_is_not_used() {
        assert_eq!(
            warning(&ret(PyValue::Int(200), dict(&[]), None)),
            "the return value was not used: body is a dict, not a str"
        );
    }

    #[test]
    fn none_body_is_not_used() {
        assert_eq!(
            warning(&ret(PyValue::Int(200), PyValue::None, None)),
            "the return value was not used: body is None, not a str"
        );
    }

    #[test]
    fn status_code_is_checked_before_body() {
        assert_eq!(
            warning(&ret(PyValue::Int(99), PyValue::None, None)),
            "the return value was not used: status_code 99 is outside 200-599"
        );
    }

    #[test]
    fn list_headers_are_not_used() {
        assert_eq!(
            warning(&ret(
                PyValue::Int(200),
                s("ok"),
                Some(PyValue::List(vec![]))
            )),
            "the return value was not used: headers is a list, not a dict"
        );
    }

    #[test]
    fn int_header_value_is_not_used() {
        assert_eq!(
            warning(&with_headers(&[("X-A", PyValue::Int(1))])),
            "the return value was not used: headers[\"X-A\"] is an int, not a str"
        );
    }

    #[test]
    fn non_str_header_name_is_not_used() {
        let headers = PyValue::Dict(vec![(PyValue::Bytes(b"X-A".to_vec()), s("1"))]);
        assert_eq!(
            warning(&ret(PyValue::Int(200), s("ok"), Some(headers))),
            "the return value was not used: a header name is a bytes, not a str"
        );
    }

    #[test]
    fn header_name_with_space_is_not_used() {
        assert_eq!(
            warning(&with_headers(&[("Bad Name", s("1"))])),
            "the return value was not used: header name \"Bad Name\" is not a valid HTTP header name"
        );
    }

    #[test]
    fn header_name_with_colon_or_non_ascii_is_not_used() {
        assert_eq!(
            warning(&with_headers(&[("X-A:", s("1"))])),
            "the return value was not used: header name \"X-A:\" is not a valid HTTP header name"
        );
        assert_eq!(
            warning(&with_headers(&[("X-Né", s("1"))])),
            "the return value was not used: header name \"X-Né\" is not a valid HTTP header name"
        );
    }

    #[test]
    fn empty_header_name_is_not_used() {
        assert_eq!(
            warning(&with_headers(&[("", s("1"))])),
            "the return value was not used: header name \"\" is not a valid HTTP header name"
        );
    }

    #[test]
    fn header_name_with_all_token_characters_is_valid() {
        let name = "!#$%&'*+-.^_`|~09azAZ";
        let response = custom(&with_headers(&[(name, s("1"))]));
        assert_eq!(response.headers[0], (name.to_string(), "1".to_string()));
    }

    #[test]
    fn header_value_with_line_break_is_not_used() {
        assert_eq!(
            warning(&with_headers(&[("X-A", s("a\r\nSet-Cookie: x=1"))])),
            "the return value was not used: headers[\"X-A\"] is not a valid HTTP header value: it contains a line break"
        );
    }

    #[test]
    fn header_value_with_nul_is_not_used() {
        assert_eq!(
            warning(&with_headers(&[("X-A", s("a\0b"))])),
            "the return value was not used: headers[\"X-A\"] is not a valid HTTP header value: it contains a NUL character"
        );
    }

    #[test]
    fn header_value_with_control_character_is_not_used() {
        assert_eq!(
            warning(&with_headers(&[("X-A", s("a\u{7f}"))])),
            "the return value was not used: headers[\"X-A\"] is not a valid HTTP header value: it contains a control character"
        );
    }

    #[test]
    fn header_value_outside_latin1_is_not_used() {
        assert_eq!(
            warning(&with_headers(&[("X-A", s("ok ✓"))])),
            "the return value was not used: headers[\"X-A\"] is not a valid HTTP header value: it contains a character outside Latin-1"
        );
    }

    #[test]
    fn header_value_with_latin1_tab_and_spaces_is_valid() {
        let response = custom(&with_headers(&[("X-A", s(" José\tÿ "))]));
        assert_eq!(response.headers[0].1, " José\tÿ ");
    }

    #[test]
    fn invalid_server_owned_header_still_makes_the_value_unused() {
        assert_eq!(
            warning(&with_headers(&[("Connection", s("close\n"))])),
            "the return value was not used: headers[\"Connection\"] is not a valid HTTP header value: it contains a line break"
        );
    }

    #[test]
    fn one_bad_header_makes_the_whole_value_unused() {
        assert_eq!(
            warning(&with_headers(&[
                ("X-Good", s("1")),
                ("X-Bad", PyValue::None)
            ])),
            "the return value was not used: headers[\"X-Bad\"] is None, not a str"
        );
    }

    #[test]
    fn long_header_names_are_cut_in_warnings() {
        let name = format!("Bad {}", "n".repeat(100));
        let warning = warning(&with_headers(&[(&name, s("1"))]));
        assert!(
            warning.contains(&format!("\"Bad {}…\"", "n".repeat(60))),
            "{warning}"
        );
    }

    fn parsed(body: &str) -> serde_json::Value {
        serde_json::from_str(body).expect("JSON body")
    }

    #[test]
    fn default_success_body_names_the_execution() {
        assert_eq!(
            parsed(&default_success_body("e1")),
            serde_json::json!({"status": "success", "execution_id": "e1"})
        );
    }

    #[test]
    fn failure_body_carries_only_the_exception_type() {
        assert_eq!(
            parsed(&failure_body("error", "e1", Some("ValueError"))),
            serde_json::json!({"status": "error", "execution_id": "e1", "error": "ValueError"})
        );
        assert_eq!(
            parsed(&failure_body("timeout", "e1", None)),
            serde_json::json!({"status": "timeout", "execution_id": "e1"})
        );
    }
}
