//! What uv's output says when `uv venv` or `uv pip install` failed.

use super::failure::{self, between, clean, truncate, Classified};

/// uv's words for a request to the package index that failed.
const FETCH_FAILED: [&str; 3] = [
    "Failed to fetch",
    "Request failed after",
    "error sending request",
];

/// uv's words for a requirement line it refused.
const REFUSED: [&str; 2] = ["Couldn't parse requirement", "Failed to parse"];

/// Classifies a failed uv run from its output.
pub fn classify(output: &str, index_url: &str) -> Classified {
    failure::index_unreachable(output, &FETCH_FAILED, index_url)
        .or_else(|| failure::invalid_requirement(output, &REFUSED))
        .or_else(|| build_failure(output))
        .or_else(|| resolver_failure(output, index_url))
        .unwrap_or_else(|| failure::installer_failed(output))
}

/// A package (an sdist) that failed to build.
fn build_failure(output: &str) -> Option<Classified> {
    ["Failed to build `", "Failed to download and build `"]
        .iter()
        .find_map(|marker| between(output, marker, "`"))
        .map(failure::build_failed)
}

/// What the resolver found: a package missing from the index, no release matching a pin, or
/// requirements that conflict.
fn resolver_failure(output: &str, index_url: &str) -> Option<Classified> {
    if let Some(name) = between(output, "Because ", " was not found in the package registry")
        .or_else(|| {
            between(
                output,
                "Because ",
                " was not found in the provided package locations",
            )
        })
    {
        return Some(failure::unknown_package(name, index_url));
    }
    if let Some(spec) = between(output, "there is no version of ", " and you require")
        .or_else(|| between(output, "there is no version of ", ","))
    {
        return Some(failure::no_matching_version(spec, index_url));
    }
    if let Some(spec) = between(
        output,
        " is available and you require ",
        ", we can conclude",
    ) {
        return Some(failure::no_matching_version(spec, index_url));
    }
    if !output.contains("No solution found when resolving dependencies") {
        return None;
    }
    if let Some(both) = between(output, "Because you require ", ", we can conclude") {
        return Some(failure::conflict(both));
    }
    let reasons: Vec<String> = output
        .split("ecause ")
        .skip(1)
        .filter_map(|part| part.split(", we can conclude").next())
        .map(clean)
        .collect();
    Some(failure::conflict(&truncate(&reasons.join("; "), 300)))
}

#[cfg(test)]
mod tests {
    //! On output captured from uv 0.13.

    use super::*;
    use crate::envs::{BuildFailure, DEFAULT_INDEX_URL as PYPI};

    #[test]
    fn unknown_package_names_it() {
        let output = "Using Python 3.11.7 environment at: e1\nerror: No solution found when resolving dependencies\n  cause: Because flowd-no-such-package-x was not found in the package registry and you require flowd-no-such-package-x, we can conclude that your requirements are unsatisfiable.\n";
        assert_eq!(
            classify(output, PYPI),
            Classified {
                kind: BuildFailure::UnknownPackage,
                summary: "package \"flowd-no-such-package-x\" was not found on the package index https://pypi.org/simple".into()
            }
        );
    }

    #[test]
    fn missing_version_is_no_matching_version() {
        let output = "error: No solution found when resolving dependencies\n  cause: Because there is no version of six==99.0 and you require six==99.0, we can conclude that your requirements are unsatisfiable.\n";
        let Classified { kind, summary } = classify(output, PYPI);
        assert_eq!(kind, BuildFailure::NoMatchingVersion);
        assert_eq!(
            summary,
            "no version of \"six\" matching six==99.0 is on the package index https://pypi.org/simple"
        );
    }

    #[test]
    fn range_beyond_the_releases_is_no_matching_version() {
        let output = "error: No solution found when resolving dependencies\n  cause: Because only six<=1.17.0 is available and you require six>=99,<100, we can conclude that your requirements are unsatisfiable.\n";
        let Classified { kind, summary } = classify(output, PYPI);
        assert_eq!(kind, BuildFailure::NoMatchingVersion);
        assert!(summary.contains("six>=99,<100"), "{summary}");
    }

    #[test]
    fn conflicting_pins_are_a_conflict_naming_both() {
        let output = "error: No solution found when resolving dependencies\n  cause: Because you require python-dateutil==2.8.2 and python-dateutil==2.9.0.post0, we can conclude that your requirements are unsatisfiable.\n";
        assert_eq!(
            classify(output, PYPI),
            Classified {
                kind: BuildFailure::Conflict,
                summary: "conflicting requirements: python-dateutil==2.8.2 and python-dateutil==2.9.0.post0"
                    .into()
            }
        );
    }

    #[test]
    fn conflict_through_a_dependency_is_a_conflict() {
        let output = "error: No solution found when resolving dependencies\n  cause: Because arrow==1.3.0 depends on python-dateutil>=2.7.0 and you require arrow==1.3.0, we can conclude that you require python-dateutil>=2.7.0.\n         And because you require python-dateutil<2.7, we can conclude that your requirements are unsatisfiable.\n";
        let Classified { kind, summary } = classify(output, PYPI);
        assert_eq!(kind, BuildFailure::Conflict);
        assert!(
            summary.contains("arrow==1.3.0 depends on python-dateutil>=2.7.0"),
            "{summary}"
        );
        assert!(summary.contains("python-dateutil<2.7"), "{summary}");
    }

    #[test]
    fn sdist_build_failure_is_build_failed() {
        let output = "error: Failed to build `sklearn==0.0.post12`\n  cause: The build backend returned an error\n  cause: Call to `setuptools.build_meta:__legacy__.get_requires_for_build_wheel` failed (exit status: 1)\n\n         [stderr]\n         The 'sklearn' PyPI package is deprecated, use 'scikit-learn'\n";
        assert_eq!(
            classify(output, PYPI),
            Classified {
                kind: BuildFailure::BuildFailed,
                summary: "building sklearn failed (see the build log)".into()
            }
        );
    }

    #[test]
    fn connection_refused_is_index_unreachable() {
        let output = "error: Request failed after 3 retries in 5.9s\n  cause: Failed to fetch: http://127.0.0.1:9/simple/idna/\n  cause: error sending request for url (http://127.0.0.1:9/simple/idna/)\n  cause: client error (Connect)\n  cause: tcp connect error\n  cause: Connection refused (os error 111)\n";
        assert_eq!(
            classify(output, "http://127.0.0.1:9/simple"),
            Classified {
                kind: BuildFailure::IndexUnreachable,
                summary: "the package index http://127.0.0.1:9/simple could not be reached: connection refused".into()
            }
        );
    }

    #[test]
    fn dns_failure_is_index_unreachable() {
        let output = "error: Request failed after 3 retries in 10.0s\n  cause: Failed to fetch: http://no-such-host.invalid/simple/idna/\n  cause: error sending request for url (http://no-such-host.invalid/simple/idna/)\n  cause: client error (Connect)\n  cause: dns error\n  cause: failed to lookup address information: Name or service not known\n";
        let Classified { kind, summary } = classify(output, "http://no-such-host.invalid/simple");
        assert_eq!(kind, BuildFailure::IndexUnreachable);
        assert!(
            summary.ends_with("its host name could not be resolved"),
            "{summary}"
        );
    }

    #[test]
    fn an_untrusted_tls_certificate_is_index_unreachable() {
        let output = "error: Request failed after 3 retries\n  cause: Failed to fetch: https://pypi.org/simple/idna/\n  cause: error sending request for url (https://pypi.org/simple/idna/)\n  cause: invalid peer certificate: UnknownIssuer\n";
        let Classified { kind, summary } = classify(output, PYPI);
        assert_eq!(kind, BuildFailure::IndexUnreachable);
        assert!(
            summary.ends_with("its TLS certificate is not trusted"),
            "{summary}"
        );
    }

    #[test]
    fn anything_else_is_an_installer_failure_with_its_last_error_line() {
        let output = "Using Python 3.11.7\nerror: failed to create directory `/x`: Permission denied (os error 13)\n";
        assert_eq!(
            classify(output, PYPI),
            Classified {
                kind: BuildFailure::Installer,
                summary: "the installer failed: failed to create directory `/x`: Permission denied (os error 13)".into()
            }
        );
    }

    #[test]
    fn a_refused_requirement_is_invalid_requirements() {
        let output = "error: Couldn't parse requirement in `flowd-requirements.txt` at position 0\n  Caused by: Expected one of `@`, `(`, `<`, `=`, `>`, `~`, `!`, `;`, found `=`\nsix=1.0\n   ^^\n";
        assert_eq!(
            classify(output, PYPI),
            Classified {
                kind: BuildFailure::InvalidRequirements,
                summary: "the installer refused a requirement: Couldn't parse requirement in `flowd-requirements.txt` at position 0".into()
            }
        );
    }
}
