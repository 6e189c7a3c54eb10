//! A workflow's Python `requirements`: pip requirement lines, checked at the edge.
//!
//! Accepted: PEP 508 requirements — `name`, `name[extra,…]`, version specifiers (`==`, `!=`, `<=`,
//! `>=`, `<`, `>`, `~=`, `===`, comma-separated, `==2.*` wildcards, optionally in parentheses),
//! environment markers after `;`, and direct references `name @ https://…` (http and https only).
//! Blank lines and comments (a whole `# …` line, or ` # …` after a requirement) are skipped.
//!
//! Refused, naming the line: options (`-r`, `-e`, `--index-url`, … — the server picks the package
//! index), local paths, `file:` and other non-http URLs, lines continued with a trailing
//! backslash (write the requirement on one line), and invalid names. Duplicate names with different
//! specifiers are left to the resolver, which reports the conflict.
//!
//! The parser is our own, small and strict, rather than the `pep508_rs` crate: that crate brings
//! `pep440_rs`, `regex`, `url` (with `idna` and its Unicode tables), `boxcar`, `indexmap`,
//! `itertools`, `smallvec` and more into this IO-free core crate, and it accepts local paths and
//! `file:` URLs that we would have to refuse on top of it anyway. The installer (uv or pip) parses
//! every line again; ours only has to refuse what must never reach it and to give the set a
//! canonical form for its content address ([`Requirements::digest`]).

use sha2::{Digest, Sha256};

/// At most this many requirements in one set.
pub const MAX_REQUIREMENTS: usize = 256;
/// At most this much text (bytes) in one set.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// A checked requirement set: the user's lines (comments and blank lines removed, trimmed), in
/// their order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirements {
    lines: Vec<String>,
    /// See [`Requirements::digest`]: computed once, when parsed (it names the set's environment
    /// on every execution of a workflow that has one).
    digest: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequirementsError {
    #[error(
        "requirements are {bytes} bytes long; at most {MAX_TEXT_BYTES} bytes (64 KiB) are accepted"
    )]
    TooLong { bytes: usize },
    #[error("{count} requirements given; at most {MAX_REQUIREMENTS} are accepted")]
    TooMany { count: usize },
    #[error("requirements line {line}: `{text}` is a pip option; options are not accepted (the server picks the package index): write one requirement per line, like `requests==2.32.3`")]
    Option { line: usize, text: String },
    #[error("requirements line {line}: `{text}` is a local path; only package names (`name==1.0`) and http(s) direct references (`name @ https://…`) are accepted")]
    LocalPath { line: usize, text: String },
    #[error("requirements line {line}: `{text}`: {reason}; only package names (`name==1.0`) and http(s) direct references (`name @ https://…`) are accepted")]
    Url {
        line: usize,
        text: String,
        reason: String,
    },
    #[error("requirements line {line} ends with a backslash; continued lines are not accepted: write each requirement on one line")]
    Continuation { line: usize },
    #[error(
        "requirements line {line} contains a line break; each list item must be one requirement"
    )]
    LineBreak { line: usize },
    #[error("requirements line {line}: `{name}` is not a valid package name (letters, digits, `.`, `_` and `-`, starting and ending with a letter or digit)")]
    InvalidName { line: usize, name: String },
    #[error("requirements line {line}: `{text}`: {reason}; a requirement looks like `name`, `name[extra]>=1.0,<2`, `name==2.*; python_version >= \"3.8\"` or `name @ https://…`")]
    Invalid {
        line: usize,
        text: String,
        reason: String,
    },
}

impl Requirements {
    /// Parses requirements.txt text. Line numbers in errors count every line, blank or not.
    pub fn parse_text(text: &str) -> Result<Requirements, RequirementsError> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(RequirementsError::TooLong { bytes: text.len() });
        }
        Self::parse(text.lines().enumerate().map(|(i, line)| (i + 1, line)))
    }

    /// Parses a list of lines (a JSON list); an item may not contain a line break.
    pub fn parse_lines(lines: &[String]) -> Result<Requirements, RequirementsError> {
        let bytes: usize = lines.iter().map(|line| line.len() + 1).sum();
        if bytes > MAX_TEXT_BYTES {
            return Err(RequirementsError::TooLong { bytes });
        }
        if let Some(index) = lines.iter().position(|l| l.contains(['\n', '\r'])) {
            return Err(RequirementsError::LineBreak { line: index + 1 });
        }
        Self::parse(lines.iter().enumerate().map(|(i, l)| (i + 1, l.as_str())))
    }

    fn parse<'a>(
        numbered: impl Iterator<Item = (usize, &'a str)>,
    ) -> Result<Requirements, RequirementsError> {
        let mut lines = Vec::new();
        let mut canonical = Vec::new();
        for (number, raw) in numbered {
            let line = strip_comment(raw).trim();
            if line.is_empty() {
                continue;
            }
            canonical.push(parse_line(number, line)?);
            lines.push(line.to_string());
            if lines.len() > MAX_REQUIREMENTS {
                return Err(RequirementsError::TooMany { count: lines.len() });
            }
        }
        Ok(Requirements {
            lines,
            digest: digest_of(canonical),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// requirements.txt text: one line each, newline-terminated.
    pub fn to_text(&self) -> String {
        self.lines.iter().map(|line| format!("{line}\n")).collect()
    }

    /// SHA-256 (hex) of the canonical form: each line with its name lower-cased and PEP 503
    /// normalized, extras and specifier clauses sorted, whitespace removed (collapsed in markers),
    /// and the lines sorted and deduplicated; the same set in another order or spelling has the
    /// same digest.
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

impl Default for Requirements {
    /// The empty set.
    fn default() -> Requirements {
        Requirements {
            lines: Vec::new(),
            digest: digest_of(Vec::new()),
        }
    }
}

/// The digest of canonical lines: sorted and deduplicated, then hashed.
fn digest_of(mut canonical: Vec<String>) -> String {
    canonical.sort_unstable();
    canonical.dedup();
    let mut hash = Sha256::new();
    for line in canonical {
        hash.update(line.as_bytes());
        hash.update(b"\n");
    }
    hex::encode(hash.finalize())
}

/// pip's rule: `#` starts a comment at the start of a line or after whitespace (so a URL's
/// `#sha256=…` fragment is kept).
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

/// PEP 503 normalization: lower case, runs of `-`, `_`, `.` become one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
        } else {
            if separator && !out.is_empty() {
                out.push('-');
            }
            separator = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(is_name_char)
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Checks one (comment-free, trimmed, non-empty) line; answers its canonical form.
fn parse_line(number: usize, line: &str) -> Result<String, RequirementsError> {
    let text = line.to_string();
    let invalid = |reason: &str| RequirementsError::Invalid {
        line: number,
        text: text.clone(),
        reason: reason.to_string(),
    };
    if line.ends_with('\\') {
        return Err(RequirementsError::Continuation { line: number });
    }
    if line.starts_with('-') {
        return Err(RequirementsError::Option {
            line: number,
            text: text.clone(),
        });
    }
    if line.starts_with(['.', '/', '~']) {
        return Err(RequirementsError::LocalPath {
            line: number,
            text: text.clone(),
        });
    }
    if let Some(scheme) = url_scheme(line) {
        return Err(RequirementsError::Url {
            line: number,
            text: text.clone(),
            reason: format!("a bare `{scheme}:` URL has no package name"),
        });
    }
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Err(invalid("it contains a control character"));
    }

    // name
    let name_end = line.find(|c: char| !is_name_char(c)).unwrap_or(line.len());
    let name = &line[..name_end];
    let rest_of_name = line[name_end..].trim_start();
    let glued = line[name_end..].starts_with(|c: char| {
        !c.is_whitespace() && !matches!(c, '[' | '(' | ';' | '@' | '=' | '!' | '<' | '>' | '~')
    });
    if !valid_name(name) || glued {
        let token = line
            .split(|c: char| c.is_whitespace() || matches!(c, '[' | ';' | '@' | '(' | ','))
            .next()
            .unwrap_or(line);
        if token.contains(['/', '\\']) {
            return Err(RequirementsError::LocalPath {
                line: number,
                text: text.clone(),
            });
        }
        return Err(RequirementsError::InvalidName {
            line: number,
            name: token.to_string(),
        });
    }
    if !(rest_of_name.is_empty()
        || rest_of_name.starts_with(['[', '(', ';', '@', '=', '!', '<', '>', '~']))
    {
        return Err(invalid(
            "a name may only be followed by `[extras]`, version specifiers, `; marker` or `@ URL`",
        ));
    }
    let mut canonical = normalize_name(name);
    let mut rest = rest_of_name;

    // extras
    if let Some(after) = rest.strip_prefix('[') {
        let Some(close) = after.find(']') else {
            return Err(invalid("the extras' `[` is not closed"));
        };
        let mut extras = Vec::new();
        for extra in after[..close].split(',') {
            let extra = extra.trim();
            if extra.is_empty() && after[..close].trim().is_empty() {
                continue;
            }
            if !valid_name(extra) {
                return Err(invalid(&format!("`{extra}` is not a valid extra name")));
            }
            extras.push(normalize_name(extra));
        }
        extras.sort();
        extras.dedup();
        if !extras.is_empty() {
            canonical.push('[');
            canonical.push_str(&extras.join(","));
            canonical.push(']');
        }
        rest = after[close + 1..].trim_start();
    }

    // a direct reference, or version specifiers
    let marker;
    if let Some(after) = rest.strip_prefix('@') {
        let after = after.trim_start();
        let url_end = after.find(char::is_whitespace).unwrap_or(after.len());
        let url = &after[..url_end];
        let tail = after[url_end..].trim_start();
        check_url(number, &text, url)?;
        canonical.push_str(" @ ");
        canonical.push_str(url);
        marker = match tail.strip_prefix(';') {
            Some(m) => Some(m),
            None if tail.is_empty() => None,
            None => {
                return Err(invalid(
                    "only `; marker` may follow a URL, separated from it by a space",
                ))
            }
        };
    } else {
        let (spec, tail) = match rest.find(';') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        marker = tail;
        let mut spec = spec.trim();
        if let Some(inner) = spec.strip_prefix('(') {
            spec = inner
                .strip_suffix(')')
                .ok_or_else(|| invalid("the specifiers' `(` is not closed"))?
                .trim();
        }
        if !spec.is_empty() {
            let mut clauses = Vec::new();
            for clause in spec.split(',') {
                clauses.push(parse_clause(clause).map_err(|reason| invalid(&reason))?);
            }
            clauses.sort();
            clauses.dedup();
            canonical.push_str(&clauses.join(","));
        }
    }

    if let Some(marker) = marker {
        let marker = check_marker(marker).map_err(|reason| invalid(&reason))?;
        canonical.push_str("; ");
        canonical.push_str(&marker);
    }
    Ok(canonical)
}

/// `https` in `https://…`, when the line starts with a URL scheme.
fn url_scheme(line: &str) -> Option<&str> {
    let (scheme, _) = line.split_once(':')?;
    let valid = scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

fn check_url(number: usize, text: &str, url: &str) -> Result<(), RequirementsError> {
    let error = |reason: String| RequirementsError::Url {
        line: number,
        text: text.to_string(),
        reason,
    };
    let Some(scheme) = url_scheme(url) else {
        if url.is_empty() {
            return Err(error("`@` is not followed by a URL".into()));
        }
        return Err(RequirementsError::LocalPath {
            line: number,
            text: text.to_string(),
        });
    };
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => {}
        "file" => return Err(error("`file:` URLs point at the server's own files".into())),
        other => {
            return Err(error(format!(
                "`{other}:` URLs are not accepted, only http and https"
            )))
        }
    }
    let host = url[scheme.len() + 1..]
        .strip_prefix("//")
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .unwrap_or("");
    if host.is_empty() {
        return Err(error("the URL has no host".into()));
    }
    Ok(())
}

const OPERATORS: [&str; 8] = ["===", "~=", "==", "!=", "<=", ">=", "<", ">"];

/// One specifier clause, like `>= 1.0` or `==2.*`; answers it without whitespace.
fn parse_clause(clause: &str) -> Result<String, String> {
    let clause = clause.trim();
    if clause.is_empty() {
        return Err("an empty version specifier (a stray comma?)".into());
    }
    let Some(op) = OPERATORS.iter().find(|op| clause.starts_with(*op)) else {
        return Err(format!(
            "`{clause}` does not start with a comparison (==, !=, <=, >=, <, >, ~=, ===)"
        ));
    };
    let version = clause[op.len()..].trim();
    if version.is_empty() {
        return Err(format!("`{op}` is not followed by a version"));
    }
    let arbitrary = *op == "===";
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '*' | '+' | '!' | '_' | '-');
    if !arbitrary && !version.chars().all(allowed) {
        return Err(format!("`{version}` is not a version"));
    }
    if arbitrary && version.chars().any(char::is_whitespace) {
        return Err(format!("`{version}` is not a version"));
    }
    if !arbitrary && version.contains('*') {
        let wildcard_ok = matches!(*op, "==" | "!=")
            && version.ends_with(".*")
            && version.matches('*').count() == 1;
        if !wildcard_ok {
            return Err(format!(
                "`{op}{version}`: a wildcard is only accepted at the end, after == or != (like `==2.*`)"
            ));
        }
    }
    Ok(format!("{op}{version}"))
}

const MARKER_VARIABLES: [&str; 12] = [
    "python_version",
    "python_full_version",
    "os_name",
    "sys_platform",
    "platform_release",
    "platform_system",
    "platform_version",
    "platform_machine",
    "platform_python_implementation",
    "implementation_name",
    "implementation_version",
    "extra",
];

/// Checks an environment marker's tokens (known variables, quoted strings, comparisons, `and`,
/// `or`, `in`, `not in`, balanced parentheses); answers it with whitespace collapsed. The installer
/// checks the grammar fully.
fn check_marker(marker: &str) -> Result<String, String> {
    let marker = marker.trim();
    if marker.is_empty() {
        return Err("`;` is not followed by an environment marker".into());
    }
    let mut tokens: Vec<String> = Vec::new();
    let mut depth = 0i32;
    let mut chars = marker.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => continue,
            '(' | ')' => {
                depth += if c == '(' { 1 } else { -1 };
                if depth < 0 {
                    return Err("the marker's parentheses do not match".into());
                }
                tokens.push(c.to_string());
            }
            '\'' | '"' => {
                let Some(end) = marker[start + 1..].find(c) else {
                    return Err("a quoted string in the marker is not closed".into());
                };
                let value = &marker[start + 1..start + 1 + end];
                tokens.push(format!("\"{value}\""));
                while chars.peek().is_some_and(|(i, _)| *i <= start + 1 + end) {
                    chars.next();
                }
            }
            '<' | '>' | '=' | '!' | '~' => {
                let mut op = c.to_string();
                while let Some((_, next)) = chars.peek().copied() {
                    if matches!(next, '<' | '>' | '=' | '!' | '~') {
                        op.push(next);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if !OPERATORS.contains(&op.as_str()) {
                    return Err(format!("`{op}` is not a marker comparison"));
                }
                tokens.push(op);
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '.' => {
                let mut word = c.to_string();
                while let Some((_, next)) = chars.peek().copied() {
                    if next.is_ascii_alphanumeric() || next == '_' || next == '.' {
                        word.push(next);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if !(MARKER_VARIABLES.contains(&word.as_str())
                    || matches!(word.as_str(), "and" | "or" | "in" | "not"))
                {
                    return Err(format!(
                        "`{word}` is not an environment marker variable (like python_version, sys_platform, platform_machine)"
                    ));
                }
                tokens.push(word);
            }
            other => {
                return Err(format!(
                    "`{other}` is not expected in an environment marker"
                ))
            }
        }
    }
    if depth != 0 {
        return Err("the marker's parentheses do not match".into());
    }
    Ok(tokens.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Requirements {
        Requirements::parse_text(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn err(text: &str) -> RequirementsError {
        Requirements::parse_text(text).expect_err(text)
    }

    #[test]
    fn a_bare_name_is_accepted() {
        assert_eq!(ok("requests\n").lines(), ["requests"]);
    }

    #[test]
    fn names_with_dots_underscores_and_dashes_are_accepted() {
        assert_eq!(
            ok("zope.interface\nruamel_yaml\npython-dateutil")
                .lines()
                .len(),
            3
        );
    }

    #[test]
    fn extras_are_accepted() {
        assert_eq!(
            ok("requests[socks, security]>=2.0").lines(),
            ["requests[socks, security]>=2.0"]
        );
    }

    #[test]
    fn every_version_operator_is_accepted() {
        ok("a==1.0\nb!=1.0\nc<=1.0\nd>=1.0\ne<1.0\nf>1.0\ng~=1.0\nh===1.0-local\n");
    }

    #[test]
    fn comma_separated_specifiers_and_parentheses_are_accepted() {
        ok("six>=1.0,<2\nidna (>=3.0, <4)\n");
    }

    #[test]
    fn wildcard_versions_are_accepted() {
        ok("six==1.*\nidna!=3.*\n");
    }

    #[test]
    fn a_wildcard_after_another_operator_is_refused() {
        assert!(matches!(
            err("six>=1.*"),
            RequirementsError::Invalid { line: 1, .. }
        ));
    }

    #[test]
    fn environment_markers_are_accepted() {
        ok("six; python_version >= \"3.8\" and sys_platform == 'linux'\nidna>=3 ; (os_name == \"posix\")\n");
    }

    #[test]
    fn an_unknown_marker_variable_is_refused() {
        let error = err("six; pyversion > '3'");
        assert!(error.to_string().contains("pyversion"), "{error}");
    }

    #[test]
    fn https_direct_references_are_accepted() {
        ok("pkg @ https://example.com/pkg-1.0.tar.gz#sha256=abc\npkg2 @ http://example.com/x.whl ; python_version > '3'\n");
    }

    #[test]
    fn blank_lines_and_comments_are_skipped() {
        let parsed = ok("# a comment\n\n  six==1.17.0  # trailing\n   \n");
        assert_eq!(parsed.lines(), ["six==1.17.0"]);
    }

    #[test]
    fn an_empty_text_is_an_empty_set() {
        assert!(ok("\n# nothing\n").is_empty());
    }

    #[test]
    fn the_default_is_the_empty_set_with_its_digest() {
        assert_eq!(Requirements::default(), ok("# nothing\n"));
        assert_eq!(Requirements::default().digest(), ok("").digest());
    }

    #[test]
    fn option_lines_are_refused_naming_the_line() {
        for option in [
            "-r other.txt",
            "-c constraints.txt",
            "-e git+https://x/y",
            "--index-url https://evil/simple",
            "--extra-index-url https://evil/simple",
            "-f https://x",
            "--find-links https://x",
            "--trusted-host evil",
        ] {
            let error = err(&format!("six\n{option}\n"));
            assert!(
                matches!(error, RequirementsError::Option { line: 2, .. }),
                "{option}: {error:?}"
            );
            assert!(error.to_string().contains("package index"), "{error}");
        }
    }

    #[test]
    fn local_paths_are_refused() {
        for path in ["./pkg", "../pkg", "/abs/pkg", "~/pkg", "pkg/sub"] {
            assert!(
                matches!(err(path), RequirementsError::LocalPath { line: 1, .. }),
                "{path}"
            );
        }
    }

    #[test]
    fn file_urls_are_refused() {
        let error = err("pkg @ file:///etc/passwd");
        assert!(
            matches!(error, RequirementsError::Url { line: 1, .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("file:"), "{error}");
        assert!(matches!(
            err("file:///tmp/x.whl"),
            RequirementsError::Url { .. }
        ));
    }

    #[test]
    fn other_url_schemes_are_refused() {
        let error = err("pkg @ git+https://example.com/pkg.git");
        assert!(error.to_string().contains("only http and https"), "{error}");
        assert!(matches!(
            err("pkg @ ftp://example.com/x"),
            RequirementsError::Url { .. }
        ));
        assert!(matches!(
            err("git+https://example.com/pkg.git"),
            RequirementsError::Url { .. }
        ));
    }

    #[test]
    fn continued_lines_are_refused() {
        assert_eq!(
            err("six \\\n  >=1.0\n"),
            RequirementsError::Continuation { line: 1 }
        );
    }

    #[test]
    fn an_invalid_name_is_refused() {
        assert!(matches!(
            err("six\n_private\n"),
            RequirementsError::InvalidName { line: 2, .. }
        ));
        assert!(matches!(
            err("na$me"),
            RequirementsError::InvalidName { .. }
        ));
        assert!(matches!(
            err("name-"),
            RequirementsError::InvalidName { .. }
        ));
    }

    #[test]
    fn text_after_a_name_that_is_not_a_specifier_is_refused() {
        assert!(matches!(
            err("six 1.0"),
            RequirementsError::Invalid { line: 1, .. }
        ));
        assert!(matches!(
            err("six>=1.0 extra"),
            RequirementsError::Invalid { .. }
        ));
    }

    #[test]
    fn duplicate_names_with_different_specifiers_are_left_to_the_resolver() {
        assert_eq!(ok("six==1.16.0\nsix==1.17.0").lines().len(), 2);
    }

    #[test]
    fn a_list_item_with_a_line_break_is_refused() {
        let lines = vec!["six".to_string(), "idna\nrequests".to_string()];
        assert_eq!(
            Requirements::parse_lines(&lines),
            Err(RequirementsError::LineBreak { line: 2 })
        );
    }

    #[test]
    fn a_list_of_lines_parses_like_text() {
        let lines = vec![
            "six==1.17.0".to_string(),
            "# note".to_string(),
            "idna".to_string(),
        ];
        let parsed = Requirements::parse_lines(&lines).unwrap();
        assert_eq!(parsed, ok("six==1.17.0\nidna\n"));
        assert_eq!(parsed.to_text(), "six==1.17.0\nidna\n");
    }

    #[test]
    fn more_than_256_requirements_are_refused() {
        let text: String = (0..257).map(|i| format!("pkg{i}\n")).collect();
        let error = err(&text);
        assert_eq!(error, RequirementsError::TooMany { count: 257 });
        assert!(error.to_string().contains("256"), "{error}");
        ok(&(0..256).map(|i| format!("pkg{i}\n")).collect::<String>());
    }

    #[test]
    fn more_than_64_kib_of_text_is_refused() {
        let text = format!("six\n{}", "# padding\n".repeat(7000));
        let error = err(&text);
        assert!(matches!(error, RequirementsError::TooLong { .. }));
        assert!(error.to_string().contains("64 KiB"), "{error}");
    }

    #[test]
    fn the_digest_ignores_order() {
        assert_eq!(
            ok("six\nidna==3.0\n").digest(),
            ok("idna==3.0\nsix\n").digest()
        );
    }

    #[test]
    fn the_digest_ignores_name_case_and_separators() {
        assert_eq!(
            ok("Python_Dateutil==2.8.2").digest(),
            ok("python-dateutil==2.8.2").digest()
        );
        assert_eq!(ok("zope.interface").digest(), ok("ZOPE-Interface").digest());
    }

    #[test]
    fn the_digest_ignores_whitespace_and_clause_order() {
        assert_eq!(
            ok("six >= 1.0 , < 2 ; python_version >= '3.8'").digest(),
            ok("six<2,>=1.0;python_version>=\"3.8\"").digest()
        );
    }

    #[test]
    fn the_digest_differs_for_different_pins() {
        assert_ne!(ok("six==1.16.0").digest(), ok("six==1.17.0").digest());
    }

    #[test]
    fn the_digest_ignores_comments_and_duplicates() {
        assert_eq!(ok("six # why\nsix\n").digest(), ok("six").digest());
    }

    #[test]
    fn normalize_name_follows_pep_503() {
        assert_eq!(normalize_name("Foo__Bar.-baz"), "foo-bar-baz");
    }
}
