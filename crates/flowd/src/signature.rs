//! Guessing a workflow's mode from its `def workflow(` signature: one positional parameter is
//! pull, two is catch (a parameter named `context`, which flowd fills, does not count). Only a guess for good defaults: the server (and `flowd run`) validate the
//! code for real with Python's own parser.

use flowd_core::workflow::Mode;

/// The number of positional parameters of the last top-level `def workflow(...)` in `code`, or
/// `None` when there is no such definition or its parameter list cannot be read.
pub fn workflow_positional_count(code: &str) -> Option<usize> {
    let mut found = None;
    let mut offset = 0;
    for line in code.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        // Top level only: an indented `def workflow` is a method or a nested function.
        let rest = line
            .strip_prefix("async ")
            .map(str::trim_start)
            .unwrap_or(line);
        let Some(after_def) = rest.strip_prefix("def ") else {
            continue;
        };
        let Some(after_name) = after_def.trim_start().strip_prefix("workflow") else {
            continue;
        };
        let Some(params_start) = after_name.trim_start().strip_prefix('(') else {
            continue;
        };
        let open = start + line.len() - params_start.len();
        if let Some(count) = count_positional(&code[open..]) {
            found = Some(count);
        }
    }
    found
}

/// Counts the positional parameters in `text`, which starts right after the `(` of a parameter
/// list: names before `*`, `*args` or `**kwargs`, not counting the `/` marker nor `context`
/// (the execution context, not one of the mode's parameters).
fn count_positional(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut params: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    let mut quote: Option<char> = None;
    let mut closed = false;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if c == '\\' {
                chars.next();
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '#' => {
                // A comment runs to the end of the line.
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '(' | '[' | '{' => {
                depth += 1;
                current.push(c);
            }
            ')' if depth == 0 => {
                closed = true;
                break;
            }
            ')' | ']' | '}' => {
                depth = depth.checked_sub(1)?;
                current.push(c);
            }
            ',' if depth == 0 => params.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if !closed {
        return None;
    }
    params.push(current);
    let mut count = 0;
    for param in params.iter().map(|p| p.trim()) {
        if param.is_empty() || param == "/" {
            continue;
        }
        if param.starts_with('*') {
            break;
        }
        let name = param.split([':', '=']).next().unwrap_or(param).trim();
        if name != "context" {
            count += 1;
        }
    }
    Some(count)
}

/// The mode the signature suggests: one positional parameter is pull, two is catch.
pub fn guess_mode(code: &str) -> Option<Mode> {
    match workflow_positional_count(code)? {
        1 => Some(Mode::Pull),
        2 => Some(Mode::Catch),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_and_pull_signatures() {
        assert_eq!(
            guess_mode("def workflow(_request, settings):\n    return None\n"),
            Some(Mode::Catch)
        );
        assert_eq!(
            guess_mode("import os\n\ndef workflow(settings):\n    pass\n"),
            Some(Mode::Pull)
        );
    }

    #[test]
    fn context_parameter_does_not_count() {
        assert_eq!(
            guess_mode("def workflow(_request, settings, context):\n"),
            Some(Mode::Catch)
        );
        assert_eq!(
            guess_mode("def workflow(settings, context: 'Context' = None):\n"),
            Some(Mode::Pull)
        );
    }

    #[test]
    fn annotations_defaults_and_markers() {
        assert_eq!(
            workflow_positional_count(
                "def workflow(_request: Dict[str, Any], settings: dict = {'a': (1, 2)}) -> dict:\n"
            ),
            Some(2)
        );
        assert_eq!(
            workflow_positional_count("def workflow(settings, /, *, debug=False):\n"),
            Some(1)
        );
        assert_eq!(
            workflow_positional_count("def workflow(settings, *args, **kwargs):\n"),
            Some(1)
        );
        assert_eq!(
            workflow_positional_count("async def workflow(a, b):\n"),
            Some(2)
        );
        assert_eq!(
            workflow_positional_count("def workflow(s = ')', t = \"(\"):\n"),
            Some(2)
        );
    }

    #[test]
    fn multi_line_signatures_and_comments() {
        let code = "def workflow(\n    _request,  # the call, (headers and body)\n    settings,\n):\n    pass\n";
        assert_eq!(guess_mode(code), Some(Mode::Catch));
    }

    #[test]
    fn only_top_level_definitions_count() {
        let code = "class A:\n    def workflow(self, a, b):\n        pass\n\ndef workflow(settings):\n    pass\n";
        assert_eq!(guess_mode(code), Some(Mode::Pull));
        assert_eq!(
            guess_mode("def workflows(a, b):\n    pass\n"),
            None,
            "another function's name"
        );
        assert_eq!(guess_mode("def helper(a, b):\n    pass\n"), None);
    }

    #[test]
    fn the_last_definition_wins() {
        let code =
            "def workflow(settings):\n    pass\n\ndef workflow(_request, settings):\n    pass\n";
        assert_eq!(guess_mode(code), Some(Mode::Catch));
    }

    #[test]
    fn unreadable_or_unusual_signatures() {
        assert_eq!(workflow_positional_count("def workflow(a, b"), None);
        assert_eq!(guess_mode("def workflow():\n    pass\n"), None);
        assert_eq!(guess_mode("def workflow(a, b, c):\n    pass\n"), None);
        assert_eq!(workflow_positional_count(""), None);
    }
}
