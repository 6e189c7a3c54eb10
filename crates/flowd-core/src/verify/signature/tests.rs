//! Each scheme against a vector from its provider's documentation (GitHub, Slack, the Standard
//! Webhooks specification) or, where the provider publishes none with its secret, one made by
//! Python's `hmac` module following the provider's documented construction (Stripe, `hmac`);
//! then every way a call can fail.

use serde_json::json;

use super::*;

fn verification(config: serde_json::Value) -> Verification {
    Verification::from_json(&config).expect("a valid verify object")
}

fn check(
    config: serde_json::Value,
    secret: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    now_s: i64,
) -> Result<(), VerifyFailure> {
    let headers: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(name, value)| (*name, value.as_bytes()))
        .collect();
    verification(config).check(
        &[secret],
        &SignedRequest {
            headers: &headers,
            body,
            now_s,
        },
    )
}

// --- GitHub: https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries

const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const GITHUB_SIGNATURE: &str =
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

fn github(headers: &[(&str, &str)], body: &[u8]) -> Result<(), VerifyFailure> {
    let config = json!({"scheme": "github", "secret": "GH"});
    check(config, GITHUB_SECRET, headers, body, 0)
}

#[test]
fn github_documented_example_verifies() {
    let headers = [("x-hub-signature-256", GITHUB_SIGNATURE)];
    assert_eq!(github(&headers, b"Hello, World!"), Ok(()));
}

#[test]
fn github_signature_of_another_body_is_a_mismatch() {
    let headers = [("x-hub-signature-256", GITHUB_SIGNATURE)];
    assert_eq!(
        github(&headers, b"Hello, World?"),
        Err(VerifyFailure::Mismatch)
    );
}

#[test]
fn github_signature_with_another_secret_is_a_mismatch() {
    let config = json!({"scheme": "github", "secret": "GH"});
    let headers = [("x-hub-signature-256", GITHUB_SIGNATURE)];
    let result = check(config, "another secret", &headers, b"Hello, World!", 0);
    assert_eq!(result, Err(VerifyFailure::Mismatch));
}

#[test]
fn github_without_its_header_is_missing() {
    assert!(matches!(
        github(&[], b"Hello, World!"),
        Err(VerifyFailure::MissingHeader(_))
    ));
}

#[test]
fn github_sha1_header_form_is_malformed() {
    let headers = [("x-hub-signature-256", "sha1=0123")];
    assert!(matches!(
        github(&headers, b"Hello, World!"),
        Err(VerifyFailure::Malformed { .. })
    ));
}

#[test]
fn github_non_hex_signature_is_malformed() {
    let headers = [("x-hub-signature-256", "sha256=zz")];
    assert!(matches!(
        github(&headers, b"Hello, World!"),
        Err(VerifyFailure::Malformed { .. })
    ));
}

#[test]
fn github_truncated_signature_is_a_mismatch() {
    let headers = [("x-hub-signature-256", &GITHUB_SIGNATURE[..21])];
    assert_eq!(
        github(&headers, b"Hello, World!"),
        Err(VerifyFailure::Mismatch)
    );
}

#[test]
fn signature_header_sent_twice_is_malformed() {
    let headers = [
        ("x-hub-signature-256", GITHUB_SIGNATURE),
        ("X-Hub-Signature-256", GITHUB_SIGNATURE),
    ];
    assert!(matches!(
        github(&headers, b"Hello, World!"),
        Err(VerifyFailure::Malformed { .. })
    ));
}

#[test]
fn any_of_several_secrets_verifies_while_one_is_rotated() {
    let headers: Vec<(&str, &[u8])> = vec![("x-hub-signature-256", GITHUB_SIGNATURE.as_bytes())];
    let request = SignedRequest {
        headers: &headers,
        body: b"Hello, World!",
        now_s: 0,
    };
    let verification = verification(json!({"scheme": "github", "secret": "GH"}));
    assert_eq!(
        verification.check(&["the new secret", GITHUB_SECRET], &request),
        Ok(())
    );
}

// --- Slack: https://docs.slack.dev/authentication/verifying-requests-from-slack

const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const SLACK_TIMESTAMP: &str = "1531420618";
const SLACK_SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
const SLACK_BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const SLACK_SIGNED_AT: i64 = 1_531_420_618;

fn slack(signature: &str, timestamp: &str, now_s: i64) -> Result<(), VerifyFailure> {
    let config = json!({"scheme": "slack", "secret": "SLACK"});
    let headers = [
        ("x-slack-signature", signature),
        ("x-slack-request-timestamp", timestamp),
    ];
    check(config, SLACK_SECRET, &headers, SLACK_BODY, now_s)
}

#[test]
fn slack_documented_example_verifies() {
    assert_eq!(
        slack(SLACK_SIGNATURE, SLACK_TIMESTAMP, SLACK_SIGNED_AT + 299),
        Ok(())
    );
}

#[test]
fn slack_signature_under_another_timestamp_is_a_mismatch() {
    assert_eq!(
        slack(SLACK_SIGNATURE, "1531420619", SLACK_SIGNED_AT),
        Err(VerifyFailure::Mismatch)
    );
}

#[test]
fn slack_timestamp_past_the_tolerance_is_stale() {
    assert_eq!(
        slack(SLACK_SIGNATURE, SLACK_TIMESTAMP, SLACK_SIGNED_AT + 301),
        Err(VerifyFailure::Stale {
            age_s: 301,
            tolerance_s: 300
        })
    );
}

#[test]
fn slack_timestamp_from_the_future_past_the_tolerance_is_stale() {
    assert!(matches!(
        slack(SLACK_SIGNATURE, SLACK_TIMESTAMP, SLACK_SIGNED_AT - 301),
        Err(VerifyFailure::Stale { .. })
    ));
}

#[test]
fn slack_without_its_timestamp_is_missing() {
    let config = json!({"scheme": "slack", "secret": "SLACK"});
    let headers = [("x-slack-signature", SLACK_SIGNATURE)];
    assert!(matches!(
        check(config, SLACK_SECRET, &headers, SLACK_BODY, SLACK_SIGNED_AT),
        Err(VerifyFailure::MissingHeader(_))
    ));
}

#[test]
fn slack_non_numeric_timestamp_is_malformed() {
    assert!(matches!(
        slack(SLACK_SIGNATURE, "yesterday", SLACK_SIGNED_AT),
        Err(VerifyFailure::Malformed { .. })
    ));
}

#[test]
fn slack_signature_without_version_is_malformed() {
    assert!(matches!(
        slack(&SLACK_SIGNATURE[3..], SLACK_TIMESTAMP, SLACK_SIGNED_AT),
        Err(VerifyFailure::Malformed { .. })
    ));
}

#[test]
fn configured_tolerance_replaces_the_default() {
    let config = json!({"scheme": "slack", "secret": "SLACK", "tolerance_s": 10});
    let headers = [
        ("x-slack-signature", SLACK_SIGNATURE),
        ("x-slack-request-timestamp", SLACK_TIMESTAMP),
    ];
    let result = check(
        config,
        SLACK_SECRET,
        &headers,
        SLACK_BODY,
        SLACK_SIGNED_AT + 11,
    );
    assert!(matches!(result, Err(VerifyFailure::Stale { .. })));
}

// --- Standard Webhooks: the specification's test vector
// (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md)

const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SW_TIMESTAMP: &str = "1614265330";
const SW_SIGNED_AT: i64 = 1_614_265_330;
const SW_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SW_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn standard(secret: &str, signature: &str, id: &str, now_s: i64) -> Result<(), VerifyFailure> {
    let config = json!({"scheme": "standard-webhooks", "secret": "SW"});
    let headers = [
        ("webhook-id", id),
        ("webhook-timestamp", SW_TIMESTAMP),
        ("webhook-signature", signature),
    ];
    check(config, secret, &headers, SW_BODY, now_s)
}

#[test]
fn standard_webhooks_specification_vector_verifies() {
    assert_eq!(
        standard(SW_SECRET, SW_SIGNATURE, SW_ID, SW_SIGNED_AT),
        Ok(())
    );
}

#[test]
fn standard_webhooks_secret_without_its_prefix_verifies() {
    let bare = SW_SECRET.trim_start_matches("whsec_");
    assert_eq!(standard(bare, SW_SIGNATURE, SW_ID, SW_SIGNED_AT), Ok(()));
}

#[test]
fn standard_webhooks_one_matching_signature_among_several_verifies() {
    let rotating = format!("v1,bm90IHRoZSBzaWduYXR1cmU= v1a,c29tZXRoaW5nIGVsc2U= {SW_SIGNATURE}");
    assert_eq!(standard(SW_SECRET, &rotating, SW_ID, SW_SIGNED_AT), Ok(()));
}

#[test]
fn standard_webhooks_signature_of_another_id_is_a_mismatch() {
    assert_eq!(
        standard(SW_SECRET, SW_SIGNATURE, "msg_other", SW_SIGNED_AT),
        Err(VerifyFailure::Mismatch)
    );
}

#[test]
fn standard_webhooks_stale_timestamp_is_refused() {
    assert!(matches!(
        standard(SW_SECRET, SW_SIGNATURE, SW_ID, SW_SIGNED_AT + 301),
        Err(VerifyFailure::Stale { .. })
    ));
}

#[test]
fn standard_webhooks_without_a_v1_signature_is_malformed() {
    assert!(matches!(
        standard(SW_SECRET, "v1a,c29tZXRoaW5n", SW_ID, SW_SIGNED_AT),
        Err(VerifyFailure::Malformed { .. })
    ));
}

#[test]
fn standard_webhooks_signature_without_version_is_malformed() {
    assert!(matches!(
        standard(SW_SECRET, "g0hM9SsE", SW_ID, SW_SIGNED_AT),
        Err(VerifyFailure::Malformed { .. })
    ));
}

#[test]
fn standard_webhooks_secret_that_is_not_base64_cannot_be_used() {
    assert!(matches!(
        standard("whsec_not base64!", SW_SIGNATURE, SW_ID, SW_SIGNED_AT),
        Err(VerifyFailure::UnusableSecret(_))
    ));
}

// --- Stripe: https://docs.stripe.com/webhooks#verify-manually — `t.body` signed with the
// endpoint's secret as it is (`whsec_…` included); vector made with Python's `hmac`:
// hmac.new(b"whsec_test_secret", b"1700000000." + body, hashlib.sha256).hexdigest()

const STRIPE_SECRET: &str = "whsec_test_secret";
const STRIPE_BODY: &[u8] = b"{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\"\n}";
const STRIPE_V1: &str = "4f1cd7feda9826e746b7d482c4badebb657398df1099e1046364f6196a230150";
const STRIPE_SIGNED_AT: i64 = 1_700_000_000;

fn stripe(header: &str, now_s: i64) -> Result<(), VerifyFailure> {
    let config = json!({"scheme": "stripe", "secret": "STRIPE"});
    let headers = [("stripe-signature", header)];
    check(config, STRIPE_SECRET, &headers, STRIPE_BODY, now_s)
}

#[test]
fn stripe_signature_verifies() {
    let header = format!("t=1700000000,v1={STRIPE_V1},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39");
    assert_eq!(stripe(&header, STRIPE_SIGNED_AT + 10), Ok(()));
}

#[test]
fn stripe_one_matching_v1_among_several_verifies() {
    let other = "1".repeat(64);
    let header = format!("t=1700000000,v1={other},v1={STRIPE_V1}");
    assert_eq!(stripe(&header, STRIPE_SIGNED_AT), Ok(()));
}

#[test]
fn stripe_signature_under_another_timestamp_is_a_mismatch() {
    let header = format!("t=1700000001,v1={STRIPE_V1}");
    assert_eq!(
        stripe(&header, STRIPE_SIGNED_AT),
        Err(VerifyFailure::Mismatch)
    );
}

#[test]
fn stripe_stale_timestamp_is_refused() {
    let header = format!("t=1700000000,v1={STRIPE_V1}");
    assert!(matches!(
        stripe(&header, STRIPE_SIGNED_AT + 301),
        Err(VerifyFailure::Stale { .. })
    ));
}

#[test]
fn stripe_header_without_timestamp_is_malformed() {
    let header = format!("v1={STRIPE_V1}");
    assert!(matches!(
        stripe(&header, STRIPE_SIGNED_AT),
        Err(VerifyFailure::Malformed { .. })
    ));
}

#[test]
fn stripe_header_without_v1_is_malformed() {
    assert!(matches!(
        stripe("t=1700000000,v0=00", STRIPE_SIGNED_AT),
        Err(VerifyFailure::Malformed { .. })
    ));
}

// --- hmac: one header, e.g. Greenhouse's `Signature: sha256 <hex>`; vectors made with Python's
// `hmac` over b'{"action":"ping"}' under b"greenhouse-secret".

const HMAC_SECRET: &str = "greenhouse-secret";
const HMAC_BODY: &[u8] = br#"{"action":"ping"}"#;

#[test]
fn hmac_sha256_hex_with_prefix_verifies() {
    let config =
        json!({"scheme": "hmac", "secret": "GH", "header": "Signature", "prefix": "sha256 "});
    let headers = [(
        "signature",
        "sha256 8ce349ca9be920ce247d472ba6d06a8d9b52c8e1adfbb46cde9acf070af6fced",
    )];
    assert_eq!(check(config, HMAC_SECRET, &headers, HMAC_BODY, 0), Ok(()));
}

#[test]
fn hmac_sha256_base64_verifies() {
    let config =
        json!({"scheme": "hmac", "secret": "S", "header": "X-Signature", "encoding": "base64"});
    let headers = [(
        "X-Signature",
        "jONJypvpIM4kfUcrptBqjZtSyOGt+7Rs3prPBwr2/O0=",
    )];
    assert_eq!(check(config, HMAC_SECRET, &headers, HMAC_BODY, 0), Ok(()));
}

#[test]
fn hmac_sha1_hex_verifies() {
    let config =
        json!({"scheme": "hmac", "secret": "S", "header": "X-Signature", "algorithm": "sha1"});
    let headers = [("x-signature", "e4dc7ec7d498a3fbe6b0c1d2a141f204241f9972")];
    assert_eq!(check(config, HMAC_SECRET, &headers, HMAC_BODY, 0), Ok(()));
}

#[test]
fn hmac_sha1_signature_checked_as_sha256_is_a_mismatch() {
    let config = json!({"scheme": "hmac", "secret": "S", "header": "X-Signature"});
    let headers = [("x-signature", "e4dc7ec7d498a3fbe6b0c1d2a141f204241f9972")];
    assert_eq!(
        check(config, HMAC_SECRET, &headers, HMAC_BODY, 0),
        Err(VerifyFailure::Mismatch)
    );
}

#[test]
fn hmac_signature_without_its_prefix_is_malformed() {
    let config = json!({"scheme": "hmac", "secret": "S", "header": "X-Signature", "algorithm": "sha1", "prefix": "sha1="});
    let headers = [("x-signature", "e4dc7ec7d498a3fbe6b0c1d2a141f204241f9972")];
    assert!(matches!(
        check(config, HMAC_SECRET, &headers, HMAC_BODY, 0),
        Err(VerifyFailure::Malformed { .. })
    ));
}

#[test]
fn hmac_without_its_header_is_missing() {
    let config = json!({"scheme": "hmac", "secret": "S", "header": "X-Signature"});
    assert!(matches!(
        check(config, HMAC_SECRET, &[], HMAC_BODY, 0),
        Err(VerifyFailure::MissingHeader(_))
    ));
}
