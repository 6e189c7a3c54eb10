//! The check of one call's signature against a workflow's [`Verification`]: HMACs computed over
//! the raw body (and the signed timestamp and id where the scheme has them), compared in constant
//! time (`Mac::verify_slice`), and signed timestamps held to the scheme's tolerance.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use super::config::{HmacAlgorithm, HmacScheme, Scheme, SignatureEncoding, Verification};

/// What a signature is checked against.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// Header names as received (any case) with their raw values.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The body exactly as received.
    pub body: &'a [u8],
    /// The server's clock, in Unix seconds.
    pub now_s: i64,
}

/// Why a call's signature is refused (`401`; the reason goes to the execution record).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyFailure {
    #[error("the {0} header is missing")]
    MissingHeader(String),
    #[error("the {header} header is malformed: {why}")]
    Malformed { header: String, why: String },
    #[error("the signature does not match")]
    Mismatch,
    #[error("the signed timestamp is {age_s} s away from the server's clock, more than the {tolerance_s} s tolerance")]
    Stale { age_s: i64, tolerance_s: u32 },
    #[error("the secret cannot be used: {0}")]
    UnusableSecret(String),
}

impl Verification {
    /// Checks `request` with the secrets held by the settings key [`Verification::secret`]
    /// (one, or several while a secret is rotated): `Ok` when one of them signed it.
    pub fn check(
        &self,
        secrets: &[&str],
        request: &SignedRequest<'_>,
    ) -> Result<(), VerifyFailure> {
        match &self.scheme {
            Scheme::Github => {
                let header = "X-Hub-Signature-256";
                let value = text_header(request, header)?;
                let hex_signature = value
                    .strip_prefix("sha256=")
                    .ok_or_else(|| malformed(header, "it does not start with sha256="))?;
                let signature = decode_hex(header, hex_signature)?;
                any_secret(secrets, |secret| {
                    sha256_matches(secret.as_bytes(), &[request.body], &signature)
                })
            }
            Scheme::Stripe { tolerance_s } => check_stripe(secrets, request, *tolerance_s),
            Scheme::Slack { tolerance_s } => check_slack(secrets, request, *tolerance_s),
            Scheme::StandardWebhooks { tolerance_s } => {
                check_standard_webhooks(secrets, request, *tolerance_s)
            }
            Scheme::Hmac(hmac) => check_hmac(hmac, secrets, request),
        }
    }
}

fn check_stripe(
    secrets: &[&str],
    request: &SignedRequest<'_>,
    tolerance_s: u32,
) -> Result<(), VerifyFailure> {
    let header = "Stripe-Signature";
    let value = text_header(request, header)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in value.split(',') {
        let Some((key, item_value)) = item.trim().split_once('=') else {
            return Err(malformed(header, "an item is not key=value"));
        };
        match key {
            "t" => timestamp = Some(item_value),
            // Only v1 is a live scheme: v0 is Stripe's test-mode signature.
            "v1" => signatures.push(decode_hex(header, item_value)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| malformed(header, "it has no t= timestamp"))?;
    if signatures.is_empty() {
        return Err(malformed(header, "it has no v1= signature"));
    }
    check_age(header, timestamp, request.now_s, tolerance_s)?;
    any_secret(secrets, |secret| {
        signatures.iter().any(|signature| {
            sha256_matches(
                secret.as_bytes(),
                &[timestamp.as_bytes(), b".", request.body],
                signature,
            )
        })
    })
}

fn check_slack(
    secrets: &[&str],
    request: &SignedRequest<'_>,
    tolerance_s: u32,
) -> Result<(), VerifyFailure> {
    let header = "X-Slack-Signature";
    let timestamp_header = "X-Slack-Request-Timestamp";
    let value = text_header(request, header)?;
    let timestamp = text_header(request, timestamp_header)?;
    let hex_signature = value
        .strip_prefix("v0=")
        .ok_or_else(|| malformed(header, "it does not start with v0="))?;
    let signature = decode_hex(header, hex_signature)?;
    check_age(timestamp_header, timestamp, request.now_s, tolerance_s)?;
    any_secret(secrets, |secret| {
        sha256_matches(
            secret.as_bytes(),
            &[b"v0:", timestamp.as_bytes(), b":", request.body],
            &signature,
        )
    })
}

fn check_standard_webhooks(
    secrets: &[&str],
    request: &SignedRequest<'_>,
    tolerance_s: u32,
) -> Result<(), VerifyFailure> {
    let id = text_header(request, "webhook-id")?;
    let timestamp = text_header(request, "webhook-timestamp")?;
    let header = "webhook-signature";
    let value = text_header(request, header)?;
    check_age("webhook-timestamp", timestamp, request.now_s, tolerance_s)?;
    // Space-separated `version,signature` pairs: one per secret the sender signs with (several
    // while it rotates its secret); versions other than v1 are not HMAC-SHA256 and are skipped.
    let mut signatures = Vec::new();
    for item in value.split(' ').filter(|item| !item.is_empty()) {
        let Some((version, encoded)) = item.split_once(',') else {
            return Err(malformed(header, "a signature is not version,signature"));
        };
        if version == "v1" {
            signatures.push(decode_base64(header, encoded)?);
        }
    }
    if signatures.is_empty() {
        return Err(malformed(header, "it has no v1 signature"));
    }
    let keys = secrets
        .iter()
        .map(|secret| standard_webhooks_key(secret))
        .collect::<Result<Vec<_>, _>>()?;
    let signed = [
        id.as_bytes(),
        b".",
        timestamp.as_bytes(),
        b".",
        request.body,
    ];
    if keys.iter().any(|key| {
        signatures
            .iter()
            .any(|signature| sha256_matches(key, &signed, signature))
    }) {
        Ok(())
    } else {
        Err(VerifyFailure::Mismatch)
    }
}

/// A Standard Webhooks secret's key: base64, after an optional `whsec_` prefix.
fn standard_webhooks_key(secret: &str) -> Result<Vec<u8>, VerifyFailure> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    match BASE64.decode(encoded) {
        Ok(key) if !key.is_empty() => Ok(key),
        _ => Err(VerifyFailure::UnusableSecret(
            "a standard-webhooks secret is base64 (whsec_…)".into(),
        )),
    }
}

fn check_hmac(
    scheme: &HmacScheme,
    secrets: &[&str],
    request: &SignedRequest<'_>,
) -> Result<(), VerifyFailure> {
    let header = scheme.header.as_str();
    let mut value = text_header(request, header)?;
    if let Some(prefix) = &scheme.prefix {
        value = value
            .strip_prefix(prefix.as_str())
            .ok_or_else(|| malformed(header, &format!("it does not start with {prefix:?}")))?;
    }
    let signature = match scheme.encoding {
        SignatureEncoding::Hex => decode_hex(header, value)?,
        SignatureEncoding::Base64 => decode_base64(header, value)?,
    };
    any_secret(secrets, |secret| match scheme.algorithm {
        HmacAlgorithm::Sha256 => sha256_matches(secret.as_bytes(), &[request.body], &signature),
        HmacAlgorithm::Sha1 => sha1_matches(secret.as_bytes(), &[request.body], &signature),
    })
}

fn any_secret(secrets: &[&str], matches: impl Fn(&str) -> bool) -> Result<(), VerifyFailure> {
    if secrets.iter().any(|secret| matches(secret)) {
        Ok(())
    } else {
        Err(VerifyFailure::Mismatch)
    }
}

/// Whether `signature` is the HMAC-SHA256 of the concatenated `parts` under `key`, compared in
/// constant time.
fn sha256_matches(key: &[u8], parts: &[&[u8]], signature: &[u8]) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(signature).is_ok()
}

fn sha1_matches(key: &[u8], parts: &[&[u8]], signature: &[u8]) -> bool {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else {
        return false;
    };
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(signature).is_ok()
}

/// The header's value as text (trimmed); a header sent several times is refused, as signatures
/// joined by a proxy cannot be told apart.
fn text_header<'a>(request: &SignedRequest<'a>, name: &str) -> Result<&'a str, VerifyFailure> {
    let mut values = request
        .headers
        .iter()
        .filter(|(header, _)| header.eq_ignore_ascii_case(name))
        .map(|(_, value)| *value);
    let value = values
        .next()
        .ok_or_else(|| VerifyFailure::MissingHeader(name.to_string()))?;
    if values.next().is_some() {
        return Err(malformed(name, "it is sent more than once"));
    }
    std::str::from_utf8(value)
        .map(str::trim)
        .map_err(|_| malformed(name, "it is not text"))
}

fn check_age(
    header: &str,
    timestamp: &str,
    now_s: i64,
    tolerance_s: u32,
) -> Result<(), VerifyFailure> {
    let signed_at: i64 = timestamp.parse().map_err(|_| {
        malformed(
            header,
            "the timestamp is not a whole number of Unix seconds",
        )
    })?;
    let age_s = now_s.saturating_sub(signed_at);
    if age_s.unsigned_abs() > u64::from(tolerance_s) {
        return Err(VerifyFailure::Stale { age_s, tolerance_s });
    }
    Ok(())
}

fn decode_hex(header: &str, text: &str) -> Result<Vec<u8>, VerifyFailure> {
    hex::decode(text).map_err(|_| malformed(header, "the signature is not hex"))
}

fn decode_base64(header: &str, text: &str) -> Result<Vec<u8>, VerifyFailure> {
    BASE64
        .decode(text)
        .map_err(|_| malformed(header, "the signature is not base64"))
}

fn malformed(header: &str, why: &str) -> VerifyFailure {
    VerifyFailure::Malformed {
        header: header.to_string(),
        why: why.to_string(),
    }
}

#[cfg(test)]
mod tests;
