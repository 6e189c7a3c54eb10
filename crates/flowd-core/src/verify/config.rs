//! A workflow's `verify` object: `{"scheme": …, "secret": "<settings key>", …}`, parsed from the
//! API's JSON with errors that name the field, and written back as the same JSON.

use serde_json::{json, Map, Value};

/// How far a signed timestamp may be from the server's clock, by default (replay protection).
pub const DEFAULT_TOLERANCE_S: u32 = 300;
/// The largest tolerance accepted: a day.
const MAX_TOLERANCE_S: u32 = 86_400;

/// How a workflow's deliveries are signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub scheme: Scheme,
    /// The settings key whose value is the secret (a string, or a list of strings while a
    /// secret is being rotated: a signature made with any of them is accepted).
    pub secret: String,
}

/// The signature schemes flowd checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
    Github,
    /// Stripe: `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">[,v1=…]`.
    Stripe { tolerance_s: u32 },
    /// Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:ts:body">` with
    /// `X-Slack-Request-Timestamp: ts`.
    Slack { tolerance_s: u32 },
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, and `webhook-signature: v1,<base64
    /// HMAC-SHA256 of "id.ts.body">`, several space-separated; the secret is base64, usually
    /// with a `whsec_` prefix.
    StandardWebhooks { tolerance_s: u32 },
    /// Any HMAC of the body in one header: Greenhouse, Workable and most ATSs.
    Hmac(HmacScheme),
}

/// The `hmac` scheme's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmacScheme {
    /// The header carrying the signature (matched case-insensitively).
    pub header: String,
    pub algorithm: HmacAlgorithm,
    pub encoding: SignatureEncoding,
    /// Text before the signature in the header (`sha256=`), required when set.
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmacAlgorithm {
    Sha256,
    Sha1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureEncoding {
    Hex,
    Base64,
}

/// What is wrong with a `verify` object: the message names the field (`422`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("verify: {0}")]
pub struct VerificationError(String);

fn invalid(message: impl Into<String>) -> VerificationError {
    VerificationError(message.into())
}

const SCHEMES: &str = "github, stripe, slack, standard-webhooks, hmac";

impl Verification {
    /// Parses the API's `verify` object.
    pub fn from_json(value: &Value) -> Result<Verification, VerificationError> {
        let Value::Object(fields) = value else {
            return Err(invalid(
                "must be an object such as {\"scheme\": \"github\", \"secret\": \"GITHUB_SECRET\"}",
            ));
        };
        let scheme_name = match fields.get("scheme") {
            Some(Value::String(name)) => name.as_str(),
            Some(_) => {
                return Err(invalid(format!(
                    "scheme must be a string, one of {SCHEMES}"
                )))
            }
            None => return Err(invalid(format!("scheme is missing: one of {SCHEMES}"))),
        };
        let allowed: &[&str] = match scheme_name {
            "github" => &["scheme", "secret"],
            "stripe" | "slack" | "standard-webhooks" => &["scheme", "secret", "tolerance_s"],
            "hmac" => &[
                "scheme",
                "secret",
                "header",
                "algorithm",
                "encoding",
                "prefix",
            ],
            other => {
                return Err(invalid(format!(
                    "unknown scheme {other:?}: one of {SCHEMES}"
                )))
            }
        };
        if let Some(unknown) = fields.keys().find(|key| !allowed.contains(&key.as_str())) {
            return Err(invalid(format!(
                "the {scheme_name} scheme takes no field {unknown:?} (it takes {})",
                allowed.join(", ")
            )));
        }
        let secret = secret_key(fields)?;
        let scheme = match scheme_name {
            "github" => Scheme::Github,
            "stripe" => Scheme::Stripe {
                tolerance_s: tolerance(fields)?,
            },
            "slack" => Scheme::Slack {
                tolerance_s: tolerance(fields)?,
            },
            "standard-webhooks" => Scheme::StandardWebhooks {
                tolerance_s: tolerance(fields)?,
            },
            _ => Scheme::Hmac(hmac_scheme(fields)?),
        };
        Ok(Verification { scheme, secret })
    }

    /// The `verify` object, as the API shows it (defaults written out).
    pub fn to_json(&self) -> Value {
        let mut fields = Map::new();
        fields.insert("scheme".into(), json!(self.scheme.name()));
        fields.insert("secret".into(), json!(self.secret));
        match &self.scheme {
            Scheme::Github => {}
            Scheme::Stripe { tolerance_s }
            | Scheme::Slack { tolerance_s }
            | Scheme::StandardWebhooks { tolerance_s } => {
                fields.insert("tolerance_s".into(), json!(tolerance_s));
            }
            Scheme::Hmac(hmac) => {
                fields.insert("header".into(), json!(hmac.header));
                fields.insert("algorithm".into(), json!(hmac.algorithm.name()));
                fields.insert("encoding".into(), json!(hmac.encoding.name()));
                if let Some(prefix) = &hmac.prefix {
                    fields.insert("prefix".into(), json!(prefix));
                }
            }
        }
        Value::Object(fields)
    }
}

impl Scheme {
    pub fn name(&self) -> &'static str {
        match self {
            Scheme::Github => "github",
            Scheme::Stripe { .. } => "stripe",
            Scheme::Slack { .. } => "slack",
            Scheme::StandardWebhooks { .. } => "standard-webhooks",
            Scheme::Hmac(_) => "hmac",
        }
    }
}

impl HmacAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            HmacAlgorithm::Sha256 => "sha256",
            HmacAlgorithm::Sha1 => "sha1",
        }
    }
}

impl SignatureEncoding {
    pub fn name(self) -> &'static str {
        match self {
            SignatureEncoding::Hex => "hex",
            SignatureEncoding::Base64 => "base64",
        }
    }
}

fn secret_key(fields: &Map<String, Value>) -> Result<String, VerificationError> {
    match fields.get("secret") {
        Some(Value::String(key)) if !key.trim().is_empty() => Ok(key.clone()),
        Some(Value::String(_)) => Err(invalid(
            "secret must name the settings key holding the secret, not be empty",
        )),
        Some(_) => Err(invalid(
            "secret must be a string: the name of the settings key holding the secret",
        )),
        None => Err(invalid(
            "secret is missing: the name of the settings key holding the secret",
        )),
    }
}

fn tolerance(fields: &Map<String, Value>) -> Result<u32, VerificationError> {
    match fields.get("tolerance_s") {
        None | Some(Value::Null) => Ok(DEFAULT_TOLERANCE_S),
        Some(value) => value
            .as_u64()
            .and_then(|seconds| u32::try_from(seconds).ok())
            .filter(|seconds| (1..=MAX_TOLERANCE_S).contains(seconds))
            .ok_or_else(|| {
                invalid(format!(
                    "tolerance_s must be a whole number of seconds from 1 to {MAX_TOLERANCE_S}"
                ))
            }),
    }
}

fn optional_text<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, VerificationError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(invalid(format!("{name} must be a string"))),
    }
}

fn hmac_scheme(fields: &Map<String, Value>) -> Result<HmacScheme, VerificationError> {
    let header = optional_text(fields, "header")?.ok_or_else(|| {
        invalid("the hmac scheme needs header: the header carrying the signature")
    })?;
    if header.is_empty()
        || !header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        return Err(invalid(format!(
            "header {header:?} is not an HTTP header name"
        )));
    }
    let algorithm = match optional_text(fields, "algorithm")? {
        None | Some("sha256") => HmacAlgorithm::Sha256,
        Some("sha1") => HmacAlgorithm::Sha1,
        Some(other) => {
            return Err(invalid(format!(
                "unknown algorithm {other:?}: sha256 or sha1"
            )))
        }
    };
    let encoding = match optional_text(fields, "encoding")? {
        None | Some("hex") => SignatureEncoding::Hex,
        Some("base64") => SignatureEncoding::Base64,
        Some(other) => {
            return Err(invalid(format!(
                "unknown encoding {other:?}: hex or base64"
            )))
        }
    };
    let prefix = optional_text(fields, "prefix")?
        .filter(|prefix| !prefix.is_empty())
        .map(str::to_string);
    Ok(HmacScheme {
        header: header.to_ascii_lowercase(),
        algorithm,
        encoding,
        prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: Value) -> Result<Verification, String> {
        Verification::from_json(&value).map_err(|error| error.to_string())
    }

    #[test]
    fn github_scheme_names_its_secret_key() {
        let verification = parse(json!({"scheme": "github", "secret": "GH_SECRET"})).unwrap();
        assert_eq!(verification.scheme, Scheme::Github);
        assert_eq!(verification.secret, "GH_SECRET");
    }

    #[test]
    fn timestamped_schemes_default_to_a_300_s_tolerance() {
        for name in ["stripe", "slack", "standard-webhooks"] {
            let verification = parse(json!({"scheme": name, "secret": "S"})).unwrap();
            assert_eq!(verification.to_json()["tolerance_s"], json!(300), "{name}");
        }
    }

    #[test]
    fn hmac_scheme_defaults_to_sha256_hex_without_prefix() {
        let verification =
            parse(json!({"scheme": "hmac", "secret": "S", "header": "Signature"})).unwrap();
        assert_eq!(
            verification.scheme,
            Scheme::Hmac(HmacScheme {
                header: "signature".into(),
                algorithm: HmacAlgorithm::Sha256,
                encoding: SignatureEncoding::Hex,
                prefix: None,
            })
        );
    }

    #[test]
    fn written_json_parses_back_to_the_same_verification() {
        let verification = parse(json!({"scheme": "hmac", "secret": "S", "header": "X-Sig",
            "algorithm": "sha1", "encoding": "base64", "prefix": "sha1="}))
        .unwrap();
        assert_eq!(parse(verification.to_json()).unwrap(), verification);
    }

    #[test]
    fn unknown_scheme_is_refused_naming_the_schemes() {
        let error = parse(json!({"scheme": "paypal", "secret": "S"})).unwrap_err();
        assert!(error.contains("unknown scheme \"paypal\""), "{error}");
        assert!(error.contains("standard-webhooks"), "{error}");
    }

    #[test]
    fn missing_secret_key_name_is_refused() {
        let error = parse(json!({"scheme": "github"})).unwrap_err();
        assert!(error.contains("secret is missing"), "{error}");
    }

    #[test]
    fn empty_secret_key_name_is_refused() {
        assert!(parse(json!({"scheme": "github", "secret": " "})).is_err());
    }

    #[test]
    fn field_of_another_scheme_is_refused() {
        let error =
            parse(json!({"scheme": "github", "secret": "S", "tolerance_s": 5})).unwrap_err();
        assert!(error.contains("no field \"tolerance_s\""), "{error}");
    }

    #[test]
    fn hmac_scheme_without_header_is_refused() {
        let error = parse(json!({"scheme": "hmac", "secret": "S"})).unwrap_err();
        assert!(error.contains("needs header"), "{error}");
    }

    #[test]
    fn unknown_algorithm_and_encoding_are_refused() {
        assert!(
            parse(json!({"scheme": "hmac", "secret": "S", "header": "X", "algorithm": "md5"}))
                .is_err()
        );
        assert!(parse(
            json!({"scheme": "hmac", "secret": "S", "header": "X", "encoding": "base32"})
        )
        .is_err());
    }

    #[test]
    fn zero_or_huge_tolerance_is_refused() {
        assert!(parse(json!({"scheme": "stripe", "secret": "S", "tolerance_s": 0})).is_err());
        assert!(parse(json!({"scheme": "stripe", "secret": "S", "tolerance_s": 86_401})).is_err());
    }

    #[test]
    fn non_object_is_refused() {
        assert!(parse(json!("github")).is_err());
    }
}
