//! The web console: the files of `web/dist`, embedded in the binary at build time and served at
//! `/`. Every `GET` of a path that is not the API's, a hook's or a file's gets `index.html`, so
//! that the console's own routes (`/workflows/…`, `/executions/…`) load it when typed or
//! reloaded. `web/dist` is committed: building flowd needs no JavaScript tool.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::error::ApiError;

#[derive(RustEmbed)]
#[folder = "../../web/dist"]
struct Assets;

/// The hash of the console's sources that `web/dist` was built from (written by `web/build.mjs`).
pub fn source_hash() -> Option<String> {
    Assets::get("source-hash.txt")
        .map(|file| String::from_utf8_lossy(&file.data).trim().to_string())
}

/// What the router answers for every path no route has.
pub async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    let api_like = path == "/api"
        || path.starts_with("/api/")
        || path.starts_with("/teams/")
        || path == "/healthz"
        || path == "/readyz";
    if api_like || (method != Method::GET && method != Method::HEAD) {
        return ApiError::not_found("route").into_response();
    }
    let file = path.trim_start_matches('/');
    let mut response = match Assets::get(file).filter(|_| !file.is_empty()) {
        Some(asset) => {
            match Assets::get(&format!("{file}.gz")).filter(|_| accepts_gzip(&headers)) {
                Some(gzipped) => {
                    let mut response = serve(file, gzipped, &headers);
                    let response_headers = response.headers_mut();
                    response_headers
                        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                    response_headers
                        .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
                    response
                }
                None => {
                    let mut response = serve(file, asset, &headers);
                    if Assets::get(&format!("{file}.gz")).is_some() {
                        response
                            .headers_mut()
                            .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
                    }
                    response
                }
            }
        }
        // A file that is not there (an old hashed asset) is a 404, not the page.
        None if file.starts_with("assets/") || file == "source-hash.txt" => {
            return ApiError::not_found(format!("file /{file}")).into_response();
        }
        None => match Assets::get("index.html") {
            Some(index) => serve("index.html", index, &headers),
            None => return ApiError::not_found("route").into_response(),
        },
    };
    if method == Method::HEAD {
        *response.body_mut() = Body::empty();
    }
    response
}

fn serve(file: &str, asset: rust_embed::EmbeddedFile, request: &HeaderMap) -> Response {
    let etag = format!("\"{}\"", hex_prefix(&asset.metadata.sha256_hash()));
    // Files under assets/ have the hash of their content in their name: cache them for good.
    // Everything else (index.html) is revalidated at each load, so a new flowd's console shows.
    let cache = if file.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(file)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if file.ends_with(".html") {
        // The console loads only its own files and talks only to this server. CodeMirror
        // injects its styles as <style> elements, hence 'unsafe-inline' for styles only.
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                 img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
                 base-uri 'none'; form-action 'self'",
            ),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    let not_modified = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    if not_modified {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (StatusCode::OK, headers, Body::from(asset.data.into_owned())).into_response()
}

/// Whether the request's `Accept-Encoding` takes gzip (with a non-zero weight).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let weight_zero = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !weight_zero
        })
}

fn hex_prefix(hash: &[u8]) -> String {
    hash.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The content type of a console file, by its extension.
fn content_type(file: &str) -> &'static str {
    match file.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") | Some("map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::{accepts_gzip, content_type};
    use axum::http::{header, HeaderMap, HeaderValue};

    fn accept(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn gzip_is_sent_to_who_accepts_it() {
        assert!(accepts_gzip(&accept("gzip, deflate, br")));
        assert!(accepts_gzip(&accept("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&accept("*")));
        assert!(!accepts_gzip(&accept("br, deflate")));
        assert!(!accepts_gzip(&accept("gzip;q=0")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("assets/app-ABC123.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type("assets/app-ABC123.css"),
            "text/css; charset=utf-8"
        );
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }
}
