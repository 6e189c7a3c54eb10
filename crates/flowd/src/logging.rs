//! The server's log: to stderr, as text (coloured only on a terminal) or as JSON lines
//! (`json_lines`).

mod json_lines;

use std::io::IsTerminal;

use anyhow::Context;
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::EnvFilter;

/// Installs the log for `flowd serve`: `filter` as in `RUST_LOG`, `format` `text` or `json`.
pub fn init(filter: &str, format: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter).context("invalid --log filter")?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        "json" => builder
            .fmt_fields(JsonFields::new())
            .event_format(json_lines::JsonLines)
            .init(),
        _ => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    Ok(())
}
