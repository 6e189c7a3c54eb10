//! The HTTP client alerts are POSTed with (the engine's [`AlertTransport`]): reqwest, which the
//! workspace already uses (the CLI's client), with rustls for `https://` receivers.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use flowd_engine::alerts::{AlertTransport, PostResult};

/// How long one POST may take, connection included (the engine bounds each attempt too).
const POST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct HttpAlertTransport {
    client: reqwest::Client,
}

impl HttpAlertTransport {
    pub fn new() -> Result<HttpAlertTransport, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(POST_TIMEOUT)
            // A receiver answers itself: a redirect is not followed to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("flowd-alerts/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpAlertTransport { client })
    }
}

impl AlertTransport for HttpAlertTransport {
    fn post<'a>(
        &'a self,
        url: &'a str,
        body: Vec<u8>,
    ) -> Pin<Box<dyn Future<Output = PostResult> + Send + 'a>> {
        Box::pin(async move {
            let response = self
                .client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .map_err(|error| describe(&error))?;
            Ok(response.status().as_u16())
        })
    }
}

/// The error and its causes, on one line (reqwest's own message alone says little).
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
