//! `flowd invoke NAME`: calls a catch workflow's hook URL the way a third-party service would.

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, Result};
use clap::Args;
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

use super::args::{parse_json, read_file};
use crate::api::{self, Api};
use crate::{ui, Global};

pub const EXAMPLES: &str = "\
Examples:
  flowd invoke hello                                   # an empty JSON object
  flowd invoke hello --json '{\"name\": \"Ada\"}'
  flowd invoke hello --json-file event.json -H 'X-Hub-Signature-256: sha256=...'
  flowd invoke hello --form name=Ada --form tag=a --form tag=b
  flowd invoke parse-cv --file cv=@resume.pdf --form source=careers -i

The response body goes to stdout; the status and the execution id to stderr (with -i, the
status line and the headers go to stdout before the body, like curl -i).";

#[derive(Args, Debug)]
pub struct InvokeArgs {
    /// The workflow's name.
    pub name: String,
    /// Send this JSON as the body (application/json).
    #[arg(long, value_name = "JSON", conflicts_with_all = ["json_file", "form", "file"])]
    pub json: Option<String>,
    /// Send this file's JSON as the body (application/json).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["form", "file"])]
    pub json_file: Option<std::path::PathBuf>,
    /// A form field (x-www-form-urlencoded, or multipart with --file); repeatable.
    #[arg(long, short = 'F', value_name = "KEY=VALUE")]
    pub form: Vec<String>,
    /// A file part (multipart/form-data); repeatable.
    #[arg(long, value_name = "FIELD=@PATH")]
    pub file: Vec<String>,
    /// A request header; repeatable.
    #[arg(long, short = 'H', value_name = "NAME:VALUE")]
    pub header: Vec<String>,
    /// Show the response's status line and headers before the body.
    #[arg(long, short = 'i')]
    pub include: bool,
    /// Print {status, headers, body, execution_id} as JSON.
    #[arg(long = "output-json")]
    pub output_json: bool,
}

enum Body {
    Json(Vec<u8>),
    Form(Vec<(String, String)>),
    Multipart(Form),
}

pub async fn invoke(global: &Global, args: InvokeArgs) -> Result<()> {
    let body = body(&args)?;
    let headers = headers(&args.header)?;
    let api = Api::new(global)?;
    let workflow = api.workflow(&args.name).await?;
    let Some(hook) = workflow["hook_url"].as_str() else {
        return Err(anyhow!(
            "{} is a pull workflow: it has no hook URL (`flowd trigger {}` runs it now)",
            args.name,
            args.name
        ));
    };
    let url = api.url(hook);
    let mut request = api.http.post(&url);
    request = match body {
        Body::Json(bytes) => request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes),
        Body::Form(fields) => request.form(&fields),
        Body::Multipart(form) => request.multipart(form),
    };
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let spinner = ui::spinner(format!("Calling {}…", args.name));
    let response = request.send().await;
    spinner.finish_and_clear();
    let response = response.map_err(|e| api::unreachable(&api.server, &e))?;
    let status = response.status();
    let response_headers = response.headers().clone();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| anyhow!("the response could not be read: {}", api::cause(&e)))?;
    let execution_id = response_headers
        .get("x-execution-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let status_line = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );

    if args.output_json {
        let headers: serde_json::Map<String, Value> = response_headers
            .iter()
            .map(|(k, v)| (k.to_string(), json!(String::from_utf8_lossy(v.as_bytes()))))
            .collect();
        ui::print_json(&json!({
            "status": status.as_u16(),
            "headers": headers,
            "body": String::from_utf8_lossy(&bytes),
            "execution_id": execution_id,
        }));
    } else {
        let mut out = std::io::stdout().lock();
        if args.include {
            writeln!(
                out,
                "{}",
                ui::http_status(
                    status.as_u16(),
                    &format!("HTTP {status_line}"),
                    ui::color_stdout()
                )
            )?;
            for (name, value) in &response_headers {
                writeln!(
                    out,
                    "{}: {}",
                    name,
                    String::from_utf8_lossy(value.as_bytes())
                )?;
            }
            writeln!(out)?;
        }
        out.write_all(&bytes)?;
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            writeln!(out)?;
        }
        out.flush()?;
        drop(out);
        let mut summary = ui::http_status(status.as_u16(), &status_line, ui::color_stderr());
        if let Some(id) = &execution_id {
            summary.push_str(&format!(
                " · execution {id} (`flowd execution {id}` for details)"
            ));
        }
        eprintln!("{summary}");
    }
    if status.is_client_error() || status.is_server_error() {
        return Err(anyhow!(
            "the hook answered {status_line}{}",
            match &execution_id {
                Some(id) => format!(" (`flowd execution {id}` shows what happened)"),
                None => String::new(),
            }
        ));
    }
    Ok(())
}

fn body(args: &InvokeArgs) -> Result<Body> {
    if let Some(text) = &args.json {
        parse_json(text, "--json")?;
        return Ok(Body::Json(text.as_bytes().to_vec()));
    }
    if let Some(path) = &args.json_file {
        let text = read_file(path)?;
        parse_json(&text, &format!("the file {}", path.display()))?;
        return Ok(Body::Json(text.into_bytes()));
    }
    let fields = args
        .form
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("--form {pair:?} is not KEY=VALUE"))
        })
        .collect::<Result<Vec<_>>>()?;
    if args.file.is_empty() {
        if fields.is_empty() {
            return Ok(Body::Json(b"{}".to_vec()));
        }
        return Ok(Body::Form(fields));
    }
    let mut form = Form::new();
    for (key, value) in fields {
        form = form.text(key, value);
    }
    for spec in &args.file {
        let (field, path) = spec
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .ok_or_else(|| anyhow!("--file {spec:?} is not FIELD=@PATH"))?;
        let path = Path::new(path.strip_prefix('@').unwrap_or(path));
        let content =
            std::fs::read(path).map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
        let filename = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        let part = Part::bytes(content)
            .file_name(filename)
            .mime_str(content_type(path))?;
        form = form.part(field.to_string(), part);
    }
    Ok(Body::Multipart(form))
}

fn headers(specs: &[String]) -> Result<Vec<(reqwest::header::HeaderName, String)>> {
    specs
        .iter()
        .map(|spec| {
            let (name, value) = spec
                .split_once(':')
                .ok_or_else(|| anyhow!("--header {spec:?} is not NAME:VALUE"))?;
            let name =
                reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                    anyhow!("--header {spec:?}: {:?} is not a header name", name.trim())
                })?;
            Ok((name, value.trim().to_string()))
        })
        .collect()
}

/// A file part's content type, from its extension.
fn content_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "json" => "application/json",
        "txt" | "md" | "log" => "text/plain",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "odt" => "application/vnd.oasis.opendocument.text",
        "rtf" => "application/rtf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::args::json_arg;

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type(Path::new("cv.PDF")), "application/pdf");
        assert_eq!(content_type(Path::new("x")), "application/octet-stream");
    }

    #[test]
    fn headers_are_name_colon_value() {
        let parsed = headers(&["X-Token: a:b".into()]).unwrap();
        assert_eq!(parsed[0].0.as_str(), "x-token");
        assert_eq!(parsed[0].1, "a:b");
        assert!(headers(&["nocolon".into()]).is_err());
    }

    #[test]
    fn json_arg_is_checked() {
        assert!(json_arg("{\"a\": 1}", "--json").is_ok());
    }
}
