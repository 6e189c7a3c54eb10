//! What pip's output says when `python -m venv` or `pip install` failed.

use super::failure::{self, between, truncate, Classified};

/// pip's words for a request to the package index that failed.
const FETCH_FAILED: [&str; 2] = ["Retrying (Retry(", "Could not fetch URL"];

/// pip's words for a requirement line it refused.
const REFUSED: [&str; 1] = ["Invalid requirement:"];

/// Classifies a failed pip run from its output.
pub fn classify(output: &str, index_url: &str) -> Classified {
    failure::index_unreachable(output, &FETCH_FAILED, index_url)
        .or_else(|| failure::invalid_requirement(output, &REFUSED))
        .or_else(|| build_failure(output))
        .or_else(|| resolver_failure(output, index_url))
        .unwrap_or_else(|| failure::installer_failed(output))
}

/// A package (an sdist) that failed to build: the one named, or the last one pip collected.
fn build_failure(output: &str) -> Option<Classified> {
    if let Some(name) = between(output, "Failed building wheel for ", "\n") {
        return Some(failure::build_failed(name.trim()));
    }
    if !output.contains("subprocess-exited-with-error")
        && !output.contains("did not run successfully")
    {
        return None;
    }
    let name = output
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Collecting "))
        .next_back()
        .map(|spec| spec.split_whitespace().next().unwrap_or(spec))
        .unwrap_or("a package");
    Some(failure::build_failed(name))
}

/// What the resolver found: a package missing from the index (no versions at all), no release
/// matching a pin, or requirements that conflict.
fn resolver_failure(output: &str, index_url: &str) -> Option<Classified> {
    if let Some(rest) = between(
        output,
        "Could not find a version that satisfies the requirement ",
        "\n",
    ) {
        let (spec, versions) = rest.split_once(" (from versions:").unwrap_or((rest, ""));
        if versions.trim().trim_end_matches(')').trim() == "none" {
            return Some(failure::unknown_package(
                failure::package_name(spec),
                index_url,
            ));
        }
        return Some(failure::no_matching_version(spec, index_url));
    }
    if !output.contains("ResolutionImpossible") && !output.contains("conflicting dependencies") {
        return None;
    }
    let causes: Vec<&str> = output
        .lines()
        .skip_while(|l| !l.contains("The conflict is caused by:"))
        .skip(1)
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .collect();
    let requested: Vec<&str> = causes
        .iter()
        .filter_map(|l| l.strip_prefix("The user requested "))
        .collect();
    let summary = if !requested.is_empty() && requested.len() == causes.len() {
        requested.join(" and ")
    } else if !causes.is_empty() {
        causes
            .iter()
            .map(|l| {
                l.strip_prefix("The user requested ")
                    .map_or(l.to_string(), |r| format!("{r} is required"))
            })
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        "the resolver found no solution".to_string()
    };
    Some(failure::conflict(&truncate(&summary, 300)))
}

#[cfg(test)]
mod tests {
    //! On output captured from pip 24 (`Looking in links` lines and the like trimmed).

    use super::*;
    use crate::envs::{BuildFailure, DEFAULT_INDEX_URL as PYPI};

    #[test]
    fn unknown_package_names_it() {
        let output = "ERROR: Could not find a version that satisfies the requirement flowd-no-such-package-x (from versions: none)\nERROR: No matching distribution found for flowd-no-such-package-x\n";
        let Classified { kind, summary } = classify(output, PYPI);
        assert_eq!(kind, BuildFailure::UnknownPackage);
        assert!(summary.contains("\"flowd-no-such-package-x\""), "{summary}");
    }

    #[test]
    fn missing_version_is_no_matching_version() {
        let output = "ERROR: Could not find a version that satisfies the requirement six==99.0 (from versions: 0.9.0, 1.16.0, 1.17.0)\nERROR: No matching distribution found for six==99.0\n";
        let Classified { kind, summary } = classify(output, PYPI);
        assert_eq!(kind, BuildFailure::NoMatchingVersion);
        assert!(summary.contains("six==99.0"), "{summary}");
    }

    #[test]
    fn conflicting_pins_are_a_conflict_naming_both() {
        let output = "ERROR: Cannot install python-dateutil==2.8.2 and python-dateutil==2.9.0.post0 because these package versions have conflicting dependencies.\n\nThe conflict is caused by:\n    The user requested python-dateutil==2.8.2\n    The user requested python-dateutil==2.9.0.post0\n\nTo fix this you could try to:\n1. loosen the range of package versions you've specified\n\nERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/#dealing-with-dependency-conflicts\n";
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
    fn sdist_build_failure_is_build_failed() {
        let output = "Collecting sklearn (from -r r.txt (line 1))\n  Downloading sklearn-0.0.post12.tar.gz (2.6 kB)\n  Getting requirements to build wheel: finished with status 'error'\n  error: subprocess-exited-with-error\n\n  × Getting requirements to build wheel did not run successfully.\n";
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
        let output = "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPConnection object at 0x7f80db0cc6d0>: Failed to establish a new connection: [Errno 111] Connection refused')': /simple/idna/\nERROR: Could not find a version that satisfies the requirement idna (from versions: none)\nERROR: No matching distribution found for idna\n";
        let Classified { kind, summary } = classify(output, "http://127.0.0.1:9/simple");
        assert_eq!(kind, BuildFailure::IndexUnreachable);
        assert!(summary.ends_with("connection refused"), "{summary}");
    }

    #[test]
    fn a_refused_requirement_is_invalid_requirements() {
        let output = "ERROR: Invalid requirement: 'six=1.0': Expected end or semicolon (after name and no valid version specifier)\n";
        assert_eq!(
            classify(output, PYPI).kind,
            BuildFailure::InvalidRequirements
        );
    }

    #[test]
    fn dns_failure_is_index_unreachable() {
        let output = "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NameResolutionError(\"<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7f1>: Failed to resolve 'no-such-host.invalid' ([Errno -2] Name or service not known)\")': /simple/idna/\nERROR: Could not find a version that satisfies the requirement idna (from versions: none)\nERROR: No matching distribution found for idna\n";
        let Classified { kind, summary } = classify(output, "https://no-such-host.invalid/simple");
        assert_eq!(kind, BuildFailure::IndexUnreachable);
        assert!(
            summary.ends_with("its host name could not be resolved"),
            "{summary}"
        );
    }

    #[test]
    fn an_untrusted_tls_certificate_is_index_unreachable() {
        let output = "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection broken by 'SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate (_ssl.c:1006)'))': /simple/idna/\nERROR: Could not find a version that satisfies the requirement idna (from versions: none)\n";
        let Classified { kind, summary } = classify(output, PYPI);
        assert_eq!(kind, BuildFailure::IndexUnreachable);
        assert!(
            summary.ends_with("its TLS certificate is not trusted"),
            "{summary}"
        );
    }

    #[test]
    fn anything_else_is_an_installer_failure_with_its_last_error_line() {
        let output = "Collecting six==1.17.0\nERROR: Could not install packages due to an OSError: [Errno 28] No space left on device\n";
        assert_eq!(
            classify(output, PYPI),
            Classified {
                kind: BuildFailure::Installer,
                summary: "the installer failed: Could not install packages due to an OSError: [Errno 28] No space left on device".into()
            }
        );
    }
}
