//! What the CLI shows people: colours (only on a terminal), tables, spinners, times.

use std::io::IsTerminal;
use std::time::Duration;

use comfy_table::{presets, Cell, Color, ContentArrangement, Table};
use indicatif::{ProgressBar, ProgressStyle};
use owo_colors::OwoColorize;

/// Whether to colour what goes to stdout: a terminal, and no `NO_COLOR`.
pub fn color_stdout() -> bool {
    color_allowed() && std::io::stdout().is_terminal()
}

/// Whether to colour what goes to stderr.
pub fn color_stderr() -> bool {
    color_allowed() && std::io::stderr().is_terminal()
}

fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// The one line every failure ends with.
pub fn error_line(error: &anyhow::Error) {
    let prefix = if color_stderr() {
        "flowd:".red().bold().to_string()
    } else {
        "flowd:".to_string()
    };
    // One line: a multi-line cause (rare) is folded.
    let message = format!("{error:#}").replace('\n', " ");
    eprintln!("{prefix} {message}");
}

/// A short warning on stderr.
pub fn warn(message: &str) {
    if color_stderr() {
        eprintln!("{} {message}", "warning:".yellow().bold());
    } else {
        eprintln!("warning: {message}");
    }
}

/// Text in bold on a terminal.
pub fn bold(text: &str) -> String {
    if color_stdout() {
        text.bold().to_string()
    } else {
        text.to_string()
    }
}

/// Text dimmed on a terminal.
pub fn dim(text: &str) -> String {
    if color_stdout() {
        text.dimmed().to_string()
    } else {
        text.to_string()
    }
}

/// An execution status, coloured by how it went.
pub fn status(text: &str) -> String {
    if !color_stdout() {
        return text.to_string();
    }
    match status_color(text) {
        Some(Color::Green) => text.green().to_string(),
        Some(Color::Red) => text.red().to_string(),
        Some(Color::Yellow) => text.yellow().to_string(),
        _ => text.to_string(),
    }
}

/// An HTTP status line (`200 OK`), coloured by class when `color`.
pub fn http_status(code: u16, text: &str, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    match code {
        200..=299 => text.green().to_string(),
        300..=499 => text.yellow().to_string(),
        _ => text.red().to_string(),
    }
}

fn status_color(text: &str) -> Option<Color> {
    match text {
        "success" | "enabled" | "active" => Some(Color::Green),
        "error" | "timeout" | "killed" | "interrupted" | "failed" => Some(Color::Red),
        "running" | "skipped" | "paused" | "building" => Some(Color::Yellow),
        _ => None,
    }
}

/// A table for people: no borders, upper-case headers.
pub fn table(headers: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| Cell::new(h.to_uppercase())));
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    if !color_stdout() {
        table.force_no_tty();
    }
    table
}

/// A table cell holding a status, coloured on a terminal.
pub fn status_cell(text: &str) -> Cell {
    let cell = Cell::new(text);
    match status_color(text) {
        Some(color) if color_stdout() => cell.fg(color),
        _ => cell,
    }
}

/// Prints a table, trimming the padding the preset leaves at line ends.
pub fn print_table(table: &Table) {
    for line in table.to_string().lines() {
        println!("{}", line.trim_end());
    }
}

/// A spinner on stderr, shown only on a terminal, for anything that may take more than a second.
pub fn spinner(message: impl Into<String>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed:.dim}") {
        bar.set_style(style);
    }
    bar.set_message(message.into());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// An RFC 3339 time from the API, in local time (`2025-01-31 14:02:07`).
pub fn time(text: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(time) => time
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => text.to_string(),
    }
}

/// A duration in milliseconds, short (`85 ms`, `1.2 s`, `3 min 4 s`).
pub fn duration_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// `text` cut to `max` characters, with an ellipsis.
pub fn truncate(text: &str, max: usize) -> String {
    let first_line = text.lines().next().unwrap_or("");
    if first_line.chars().count() <= max && first_line.len() == text.trim_end().len() {
        return first_line.to_string();
    }
    let cut: String = first_line.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// Prints `value` as pretty JSON on stdout (for `--json`).
pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// Asks a yes/no question on the terminal. Without a terminal, answers no.
pub fn confirm(question: &str) -> std::io::Result<bool> {
    use std::io::{BufRead, Write};
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_short() {
        assert_eq!(duration_ms(85), "85 ms");
        assert_eq!(duration_ms(1234), "1.2 s");
        assert_eq!(duration_ms(184_000), "3 min 4 s");
    }

    #[test]
    fn truncation_keeps_the_first_line() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("a longer text", 5), "a lo…");
        assert_eq!(truncate("one\ntwo", 10), "one…");
    }
}
