//! CONTRACT.md §2 "`_request`": how an HTTP request to a hook URL becomes the dict the workflow
//! receives, checked over real HTTP with real Python. The workflow under test echoes `_request`
//! back as JSON with every Python type made explicit (bytes as `{"$bytes": hex}`, anything that
//! is not a plain JSON type as `{"$type": ...}`), so each test asserts the exact Python value.

use serde_json::{json, Value};

use crate::support::*;

/// Echoes `_request` as JSON: `{"type": <type of _request>, "request": <_request>}`.
const ECHO: &str = r#"import json


def plain(value):
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is bytes:
        return {"$bytes": value.hex()}
    if kind is list:
        return [plain(item) for item in value]
    if kind is dict:
        return {
            key if type(key) is str else "$key:" + repr(key): plain(item)
            for key, item in value.items()
        }
    return {"$type": kind.__name__, "repr": repr(value)}


def workflow(_request, settings):
    return {
        "status_code": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"type": type(_request).__name__, "request": plain(_request)}),
    }
"#;

async fn echo_app() -> (TestApp, Value) {
    let app = spawn_app().await;
    let workflow = app.create_catch("echo", ECHO).await;
    (app, workflow)
}

/// The `_request` a reqwest call produced, checked to be a `dict`.
async fn echoed(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(status, 200, "{text}");
    unwrap_echo(serde_json::from_str(&text).expect("JSON"))
}

/// The `_request` a raw call produced, checked to be a `dict`.
fn raw_echoed(response: &RawResponse) -> Value {
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    unwrap_echo(response.json())
}

fn unwrap_echo(echo: Value) -> Value {
    assert_eq!(echo["type"], "dict", "_request is not a plain dict: {echo}");
    echo["request"].clone()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How the echo shows a Python `bytes` value.
fn py_bytes(bytes: &[u8]) -> Value {
    json!({ "$bytes": hex(bytes) })
}

/// A raw HTTP/1.1 request to `path` with exactly `headers` (plus `Content-Length` when there is
/// a body or the method is POST) and `body`.
fn raw(method: &str, path: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut request = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
    for (name, value) in headers {
        request.extend_from_slice(name.as_bytes());
        request.extend_from_slice(b": ");
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    request.extend_from_slice(body);
    request
}

/// One part of a multipart body.
enum Part<'a> {
    Text(&'a str, &'a str),
    File {
        name: &'a str,
        filename: &'a str,
        content_type: Option<&'a str>,
        content: &'a [u8],
    },
}

/// A `multipart/form-data` body with `boundary`.
fn multipart(boundary: &str, parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match part {
            Part::Text(name, value) => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}")
                        .as_bytes(),
                );
            }
            Part::File {
                name,
                filename,
                content_type,
                content,
            } => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
                    )
                    .as_bytes(),
                );
                if let Some(content_type) = content_type {
                    body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
                }
                body.extend_from_slice(b"\r\n");
                body.extend_from_slice(content);
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

const BOUNDARY: &str = "flowd-test-boundary-7MA4YWxkTrZu0gW";

async fn post_multipart(app: &TestApp, workflow: &Value, parts: &[Part<'_>]) -> Value {
    echoed(
        app.hook(workflow)
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(multipart(BOUNDARY, parts))
            .send()
            .await
            .expect("hook request"),
    )
    .await
}

async fn post_form(app: &TestApp, workflow: &Value, body: &str) -> Value {
    echoed(
        app.hook(workflow)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .await
            .expect("hook request"),
    )
    .await
}

async fn post_json_text(app: &TestApp, workflow: &Value, body: &str) -> Value {
    echoed(
        app.hook(workflow)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("hook request"),
    )
    .await
}

// --- the dict: headers and body merged at top level ------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn request_is_a_plain_dict_of_headers_and_body_merged_at_top_level() {
    let (app, workflow) = echo_app().await;
    let body = br#"{"file_url": "https://example.com/cv.pdf", "n": 1}"#;
    let response = app
        .raw_request(&raw(
            "POST",
            hook_path(&workflow),
            &[
                ("Host", b"hooks.example.com"),
                ("Content-Type", b"application/json"),
                ("Connection", b"close"),
            ],
            body,
        ))
        .await;
    assert_eq!(
        raw_echoed(&response),
        json!({
            "Host": "hooks.example.com",
            "Content-Type": "application/json",
            "Connection": "close",
            "Content-Length": body.len().to_string(),
            "file_url": "https://example.com/cv.pdf",
            "n": 1,
        })
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_and_body_fields_are_read_by_plain_subscripts() {
    let app = spawn_app().await;
    let workflow = app
        .create_catch(
            "subscripts",
            &catch_code(
                "return {'status_code': 200, 'body': _request['Content-Type'] + ' ' + _request['file_url']}",
            ),
        )
        .await;
    let response = app
        .call_hook_json(
            &workflow,
            &json!({"file_url": "https://example.com/cv.pdf"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.unwrap(),
        "application/json https://example.com/cv.pdf"
    );
    app.stop().await;
}

// --- headers ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn header_names_appear_in_canonical_capitalisation() {
    let (app, workflow) = echo_app().await;
    let response = app
        .raw_request(&raw(
            "POST",
            hook_path(&workflow),
            &[
                ("host", b"h"),
                ("content-type", b"application/json"),
                ("x-hub-signature-256", b"sha256=abc"),
                ("USER-AGENT", b"GitHub-Hookshot/1"),
                ("x-GitHub-EVENT", b"push"),
            ],
            b"{}",
        ))
        .await;
    let request = raw_echoed(&response);
    let mut keys: Vec<&str> = request
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "Content-Length",
            "Content-Type",
            "Host",
            "User-Agent",
            "X-Github-Event",
            "X-Hub-Signature-256"
        ]
    );
    assert_eq!(request["X-Hub-Signature-256"], "sha256=abc");
    assert_eq!(request["User-Agent"], "GitHub-Hookshot/1");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_header_values_are_joined_with_comma_space() {
    let (app, workflow) = echo_app().await;
    let response = app
        .raw_request(&raw(
            "POST",
            hook_path(&workflow),
            &[
                ("Host", b"h"),
                ("Content-Type", b"application/json"),
                ("X-Tag", b"a"),
                ("Accept", b"text/html"),
                ("x-tag", b"b"),
                ("X-TAG", b"c, d"),
            ],
            b"{}",
        ))
        .await;
    let request = raw_echoed(&response);
    assert_eq!(request["X-Tag"], "a, b, c, d");
    assert_eq!(request["Accept"], "text/html");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn header_values_are_str_even_when_not_utf8() {
    let (app, workflow) = echo_app().await;
    let response = app
        .raw_request(&raw(
            "POST",
            hook_path(&workflow),
            &[
                ("Host", b"h"),
                ("Content-Type", b"application/json"),
                ("X-Number", b"42"),
                ("X-Name", "José".as_bytes()),
                ("X-Latin1", b"Jos\xe9"),
                ("X-Empty", b""),
            ],
            b"{}",
        ))
        .await;
    let request = raw_echoed(&response);
    assert_eq!(request["X-Number"], "42");
    assert_eq!(request["X-Name"], "José");
    assert_eq!(request["X-Latin1"], "José");
    assert_eq!(request["X-Empty"], "");
    app.stop().await;
}

// --- query string and precedence -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn query_parameters_are_merged_into_the_request() {
    let (app, workflow) = echo_app().await;
    let url = format!(
        "{}?page=2&q=a+b%21&name=Jos%C3%A9&flag",
        hook_path(&workflow)
    );
    let request = echoed(
        app.client
            .post(app.url(&url))
            .json(&json!({"n": 1}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(request["page"], "2");
    assert_eq!(request["q"], "a b!");
    assert_eq!(request["name"], "José");
    assert_eq!(request["flag"], "");
    assert_eq!(request["n"], 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_query_parameter_becomes_a_list_in_order() {
    let (app, workflow) = echo_app().await;
    let url = format!("{}?id=3&x=0&id=1&id=2", hook_path(&workflow));
    let request = echoed(
        app.client
            .post(app.url(&url))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(request["id"], json!(["3", "1", "2"]));
    assert_eq!(request["x"], "0");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn header_wins_over_query_parameter_on_name_clash() {
    let (app, workflow) = echo_app().await;
    let url = format!("{}?X-Source=query&only=query", hook_path(&workflow));
    let request = echoed(
        app.client
            .post(app.url(&url))
            .header("x-source", "header")
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(request["X-Source"], "header");
    assert_eq!(request["only"], "query");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_body_wins_over_header_on_name_clash() {
    let (app, workflow) = echo_app().await;
    let request = echoed(
        app.hook(&workflow)
            .header("X-Source", "header")
            .json(&json!({"X-Source": "body", "Content-Type": {"nested": true}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(request["X-Source"], "body");
    assert_eq!(request["Content-Type"], json!({"nested": true}));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn body_wins_over_query_parameter_on_name_clash() {
    let (app, workflow) = echo_app().await;
    let url = format!("{}?source=query&source=query2&q=1", hook_path(&workflow));
    let request = echoed(
        app.client
            .post(app.url(&url))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("source=body")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(request["source"], "body");
    assert_eq!(request["q"], "1");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn multipart_field_wins_over_header_and_query_parameter() {
    let (app, workflow) = echo_app().await;
    let url = format!("{}?X-Source=query", hook_path(&workflow));
    let request = echoed(
        app.client
            .post(app.url(&url))
            .header("X-Source", "header")
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(multipart(BOUNDARY, &[Part::Text("X-Source", "body")]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(request["X-Source"], "body");
    app.stop().await;
}

// --- application/json ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn json_object_keys_become_keys_with_values_as_decoded_json() {
    let (app, workflow) = echo_app().await;
    let request = post_json_text(
        &app,
        &workflow,
        r#"{"s": "é ✓", "i": -7, "f": 1.5, "whole_float": 2.0, "big": 12345678901234567890,
            "t": true, "n": null, "l": [1, "a", [], {}], "o": {"k": {"deep": [null]}}}"#,
    )
    .await;
    assert_eq!(request["s"], "é ✓");
    assert_eq!(request["i"], json!(-7));
    assert_eq!(request["f"], json!(1.5));
    assert_eq!(request["whole_float"], json!(2.0));
    assert_eq!(request["big"], json!(12345678901234567890u64));
    assert_eq!(request["t"], json!(true));
    assert_eq!(request["n"], Value::Null);
    assert_eq!(request["l"], json!([1, "a", [], {}]));
    assert_eq!(request["o"], json!({"k": {"deep": [null]}}));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_array_body_is_put_under_body() {
    let (app, workflow) = echo_app().await;
    let request = post_json_text(&app, &workflow, r#"[1, {"a": "b"}]"#).await;
    assert_eq!(request["body"], json!([1, {"a": "b"}]));
    assert!(request.get("a").is_none(), "{request}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_string_body_is_put_under_body() {
    let (app, workflow) = echo_app().await;
    let request = post_json_text(&app, &workflow, r#""hello""#).await;
    assert_eq!(request["body"], "hello");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_number_body_is_put_under_body() {
    let (app, workflow) = echo_app().await;
    let request = post_json_text(&app, &workflow, "42").await;
    assert_eq!(request["body"], json!(42));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_null_body_is_put_under_body() {
    let (app, workflow) = echo_app().await;
    let request = post_json_text(&app, &workflow, "null").await;
    assert_eq!(request.get("body"), Some(&Value::Null), "{request}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_json_body_is_treated_as_an_empty_object() {
    let (app, workflow) = echo_app().await;
    let response = app
        .raw_request(&raw(
            "POST",
            hook_path(&workflow),
            &[("Host", b"h"), ("Content-Type", b"application/json")],
            b"",
        ))
        .await;
    assert_eq!(
        raw_echoed(&response),
        json!({"Host": "h", "Content-Type": "application/json", "Content-Length": "0"})
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_content_type_with_charset_parameter_is_accepted() {
    let (app, workflow) = echo_app().await;
    let request = echoed(
        app.hook(&workflow)
            .header("Content-Type", "application/json; charset=utf-8")
            .body(r#"{"a": "é"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(request["a"], "é");
    assert_eq!(request["Content-Type"], "application/json; charset=utf-8");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_media_type_is_matched_case_insensitively() {
    let (app, workflow) = echo_app().await;
    let request = echoed(
        app.hook(&workflow)
            .header("Content-Type", "Application/JSON; Charset=UTF-8")
            .body(r#"{"a": 1}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(request["a"], 1);
    app.stop().await;
}

// --- application/x-www-form-urlencoded -------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn form_fields_are_str() {
    let (app, workflow) = echo_app().await;
    let request = post_form(
        &app,
        &workflow,
        "n=1&name=Jos%C3%A9&space=x+y&pct=100%25&empty=&raw=caf\u{e9}",
    )
    .await;
    assert_eq!(request["n"], "1");
    assert_eq!(request["name"], "José");
    assert_eq!(request["space"], "x y");
    assert_eq!(request["pct"], "100%");
    assert_eq!(request["empty"], "");
    assert_eq!(request["raw"], "café");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_form_field_becomes_a_list_of_str_in_order() {
    let (app, workflow) = echo_app().await;
    let request = post_form(&app, &workflow, "tag=b&x=1&tag=a&tag=c").await;
    assert_eq!(request["tag"], json!(["b", "a", "c"]));
    assert_eq!(request["x"], "1");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn form_media_type_with_charset_is_matched_case_insensitively() {
    let (app, workflow) = echo_app().await;
    let request = echoed(
        app.hook(&workflow)
            .header(
                "Content-Type",
                "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
            )
            .body("a=1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(request["a"], "1");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_form_body_adds_no_field() {
    let (app, workflow) = echo_app().await;
    let response = app
        .raw_request(&raw(
            "POST",
            hook_path(&workflow),
            &[
                ("Host", b"h"),
                ("Content-Type", b"application/x-www-form-urlencoded"),
            ],
            b"",
        ))
        .await;
    assert_eq!(
        raw_echoed(&response),
        json!({
            "Host": "h",
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": "0",
        })
    );
    app.stop().await;
}

// --- multipart/form-data ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn multipart_part_without_filename_is_a_str_field() {
    let (app, workflow) = echo_app().await;
    let request = post_multipart(
        &app,
        &workflow,
        &[Part::Text("name", "José ✓"), Part::Text("empty", "")],
    )
    .await;
    assert_eq!(request["name"], "José ✓");
    assert_eq!(request["empty"], "");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_multipart_text_field_becomes_a_list_of_str_in_order() {
    let (app, workflow) = echo_app().await;
    let request = post_multipart(
        &app,
        &workflow,
        &[
            Part::Text("tag", "b"),
            Part::Text("other", "x"),
            Part::Text("tag", "a"),
            Part::Text("tag", "c"),
        ],
    )
    .await;
    assert_eq!(request["tag"], json!(["b", "a", "c"]));
    assert_eq!(request["other"], "x");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn multipart_file_part_is_a_dict_of_filename_content_type_and_bytes() {
    let (app, workflow) = echo_app().await;
    let request = post_multipart(
        &app,
        &workflow,
        &[
            Part::Text("candidate", "ada"),
            Part::File {
                name: "cv",
                filename: "cv.pdf",
                content_type: Some("application/pdf"),
                content: b"%PDF-1.4 fake",
            },
        ],
    )
    .await;
    assert_eq!(
        request["cv"],
        json!({
            "filename": "cv.pdf",
            "content_type": "application/pdf",
            "content": py_bytes(b"%PDF-1.4 fake"),
        })
    );
    assert_eq!(request["candidate"], "ada");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn multipart_file_part_without_content_type_still_has_a_str_content_type() {
    let (app, workflow) = echo_app().await;
    let request = post_multipart(
        &app,
        &workflow,
        &[Part::File {
            name: "f",
            filename: "notes.txt",
            content_type: None,
            content: b"hi",
        }],
    )
    .await;
    assert_eq!(
        request["f"],
        json!({
            "filename": "notes.txt",
            "content_type": "application/octet-stream",
            "content": py_bytes(b"hi"),
        })
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_multipart_file_parts_become_a_list_of_dicts_in_order() {
    let (app, workflow) = echo_app().await;
    let request = post_multipart(
        &app,
        &workflow,
        &[
            Part::File {
                name: "docs",
                filename: "b.csv",
                content_type: Some("text/csv"),
                content: b"B",
            },
            Part::Text("x", "1"),
            Part::File {
                name: "docs",
                filename: "a.txt",
                content_type: Some("text/plain"),
                content: b"A",
            },
        ],
    )
    .await;
    assert_eq!(
        request["docs"],
        json!([
            {"filename": "b.csv", "content_type": "text/csv", "content": py_bytes(b"B")},
            {"filename": "a.txt", "content_type": "text/plain", "content": py_bytes(b"A")},
        ])
    );
    app.stop().await;
}

/// Every byte value, line breaks, most of the boundary and 1 MiB of pseudo-random data.
fn binary_content() -> Vec<u8> {
    let mut content: Vec<u8> = (0..=255u8).collect();
    // A prefix of the delimiter (the whole delimiter may not appear in a part, RFC 2046).
    content.extend_from_slice(b"\r\n\r\n--");
    content.extend_from_slice(&BOUNDARY.as_bytes()[..BOUNDARY.len() - 1]);
    content.extend_from_slice(b"\r\n\x00\r");
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    content.extend((0..1 << 20).map(|_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 24) as u8
    }));
    content.extend_from_slice(b"\r\n");
    content
}

#[tokio::test(flavor = "multi_thread")]
async fn binary_file_content_round_trips_exactly() {
    let app = spawn_app().await;
    // Sends the content back as hex: the whole bytes value, not a summary of it.
    let workflow = app
        .create_catch(
            "binary",
            &catch_code(
                "f = _request['blob']\nreturn {'status_code': 200, 'body': type(f['content']).__name__ + ':' + f['content'].hex()}",
            ),
        )
        .await;
    let content = binary_content();
    let response = app
        .hook(&workflow)
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(
            BOUNDARY,
            &[Part::File {
                name: "blob",
                filename: "blob.bin",
                content_type: Some("application/octet-stream"),
                content: &content,
            }],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(
        text == format!("bytes:{}", hex(&content)),
        "content differs: {} bytes of hex back for {} bytes sent; starts {:?}",
        text.len(),
        content.len(),
        &text[..text.len().min(80)]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn multipart_media_type_and_quoted_boundary_parameter_are_matched_in_any_case() {
    let (app, workflow) = echo_app().await;
    let boundary = "a quoted; boundary";
    let request = echoed(
        app.hook(&workflow)
            .header(
                "Content-Type",
                format!("Multipart/Form-Data; charset=utf-8; BOUNDARY=\"{boundary}\""),
            )
            .body(multipart(boundary, &[Part::Text("a", "1")]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(request["a"], "1");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn multipart_form_built_by_an_http_client_library_is_parsed() {
    let (app, workflow) = echo_app().await;
    let form = reqwest::multipart::Form::new()
        .text("profile_key", "abc")
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"\x89PNG\r\n\x1a\n".to_vec())
                .file_name("photo.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let request = echoed(app.hook(&workflow).multipart(form).send().await.unwrap()).await;
    assert_eq!(request["profile_key"], "abc");
    assert_eq!(
        request["file"],
        json!({
            "filename": "photo.png",
            "content_type": "image/png",
            "content": py_bytes(b"\x89PNG\r\n\x1a\n"),
        })
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn multipart_filename_may_hold_utf8() {
    let (app, workflow) = echo_app().await;
    let request = post_multipart(
        &app,
        &workflow,
        &[Part::File {
            name: "cv",
            filename: "résumé ✓.pdf",
            content_type: Some("application/pdf"),
            content: b"x",
        }],
    )
    .await;
    assert_eq!(request["cv"]["filename"], "résumé ✓.pdf");
    app.stop().await;
}

/// zlib's Adler-32, as Python's `zlib.adler32` computes it.
fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    b << 16 | a
}

#[tokio::test(flavor = "multi_thread")]
async fn large_file_part_near_the_default_limit_arrives_whole() {
    let app = spawn_app().await;
    let workflow = app
        .create_catch(
            "large",
            &catch_code(
                "import zlib\nc = _request['big']['content']\nreturn {'status_code': 200, 'body': '%d %d' % (len(c), zlib.adler32(c))}",
            ),
        )
        .await;
    let content: Vec<u8> = (0..24u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let response = app
        .hook(&workflow)
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(
            BOUNDARY,
            &[Part::File {
                name: "big",
                filename: "big.bin",
                content_type: None,
                content: &content,
            }],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.unwrap(),
        format!("{} {}", content.len(), adler32(&content))
    );
    app.stop().await;
}
