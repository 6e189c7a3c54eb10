//! A failed installer run, classified: the [`Classified`] result both installers' classifiers
//! answer, and what they share — the words of a connection failure, the fallback to the last
//! error line, and the summaries users read.

use super::BuildFailure;

/// What a failed installer run was, and one line a user understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub kind: BuildFailure,
    pub summary: String,
}

impl Classified {
    fn new(kind: BuildFailure, summary: String) -> Classified {
        Classified { kind, summary }
    }
}

/// Why a connection failed, in either installer's words or the operating system's: the phrase,
/// and the reason a user reads. The first found wins.
const CONNECTION_FAILURES: [(&str, &str); 14] = [
    ("Connection refused", "connection refused"),
    ("dns error", "its host name could not be resolved"),
    (
        "Name or service not known",
        "its host name could not be resolved",
    ),
    (
        "Temporary failure in name resolution",
        "its host name could not be resolved",
    ),
    (
        "nodename nor servname",
        "its host name could not be resolved",
    ),
    (
        "invalid peer certificate",
        "its TLS certificate is not trusted",
    ),
    (
        "CERTIFICATE_VERIFY_FAILED",
        "its TLS certificate is not trusted",
    ),
    ("operation timed out", "the connection timed out"),
    ("Read timed out", "the connection timed out"),
    ("ConnectTimeoutError", "the connection timed out"),
    ("Network is unreachable", "the network is unreachable"),
    ("No route to host", "there is no route to its host"),
    (
        "Failed to establish a new connection",
        "the connection failed",
    ),
    ("tcp connect error", "the connection failed"),
];

/// The package index could not be reached: the output has one of the installer's phrases for a
/// failed request (`fetch_failed`) and says why the connection failed. Checked first: an
/// installer goes on to report packages as missing after a connection failure.
pub(super) fn index_unreachable(
    output: &str,
    fetch_failed: &[&str],
    index_url: &str,
) -> Option<Classified> {
    if !fetch_failed.iter().any(|phrase| output.contains(phrase)) {
        return None;
    }
    let (_, reason) = CONNECTION_FAILURES
        .iter()
        .find(|(phrase, _)| output.contains(phrase))?;
    Some(Classified::new(
        BuildFailure::IndexUnreachable,
        format!("the package index {index_url} could not be reached: {reason}"),
    ))
}

/// A requirement line the installer refused: the first line with the first of its `refusals`
/// found.
pub(super) fn invalid_requirement(output: &str, refusals: &[&str]) -> Option<Classified> {
    let line = refusals
        .iter()
        .find_map(|refusal| output.lines().find(|line| line.contains(refusal)))?;
    Some(Classified::new(
        BuildFailure::InvalidRequirements,
        format!("the installer refused a requirement: {}", clean(line)),
    ))
}

/// Anything else: the installer's last error line (or last line).
pub(super) fn installer_failed(output: &str) -> Classified {
    let last = output
        .lines()
        .map(str::trim)
        .rfind(|l| l.starts_with("error:") || l.starts_with("ERROR:"))
        .or_else(|| output.lines().map(str::trim).rfind(|l| !l.is_empty()))
        .unwrap_or("no output");
    Classified::new(
        BuildFailure::Installer,
        format!("the installer failed: {}", truncate(&clean(last), 300)),
    )
}

pub(super) fn unknown_package(name: &str, index_url: &str) -> Classified {
    Classified::new(
        BuildFailure::UnknownPackage,
        format!("package \"{name}\" was not found on the package index {index_url}"),
    )
}

pub(super) fn no_matching_version(spec: &str, index_url: &str) -> Classified {
    Classified::new(
        BuildFailure::NoMatchingVersion,
        format!(
            "no version of \"{}\" matching {} is on the package index {index_url}",
            package_name(spec),
            spec.trim()
        ),
    )
}

pub(super) fn build_failed(name: &str) -> Classified {
    Classified::new(
        BuildFailure::BuildFailed,
        format!("building {} failed (see the build log)", package_name(name)),
    )
}

pub(super) fn conflict(summary: &str) -> Classified {
    Classified::new(
        BuildFailure::Conflict,
        format!("conflicting requirements: {summary}"),
    )
}

/// `six` from `six==1.0`, `six>=1,<2` or `six[extra]`.
pub(super) fn package_name(spec: &str) -> &str {
    let spec = spec.trim();
    let end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(spec.len());
    &spec[..end]
}

/// The text between the first `start` and the `end` after it.
pub(super) fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

/// One line: whitespace collapsed, `error:`/`cause:`/`ERROR:` prefixes dropped.
pub(super) fn clean(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    ["error: ", "ERROR: ", "cause: "]
        .iter()
        .fold(collapsed, |s, prefix| {
            s.strip_prefix(prefix).map(str::to_string).unwrap_or(s)
        })
}

/// At most `max` bytes of `text` (on a character boundary), marked when cut.
pub(super) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
