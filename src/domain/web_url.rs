//! Absolute URLs flexbridge is configured with, and the query encoding it
//! uses whenever it adds values to one.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use url::Url;

use super::FlowSid;

/// Characters left as they are in query names and values: RFC 3986
/// "unreserved" only. Everything else is percent-encoded, so a URL we build
/// is plain ASCII whatever the caller or the assistant sent.
const QUERY_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encode text as one query name or value.
pub fn encode_query_text(text: &str) -> String {
    utf8_percent_encode(text, QUERY_COMPONENT).to_string()
}

/// Why a text is not an acceptable absolute URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not a URL at all, or a relative one.
    #[error("not an absolute URL ({0})")]
    Invalid(#[from] url::ParseError),
    /// Another scheme than http or https.
    #[error("the scheme must be https (or http for local testing)")]
    Scheme,
    /// A part this kind of URL must not have.
    #[error("must not contain {0}")]
    Forbidden(&'static str),
    /// Not a secure WebSocket URL.
    #[error("the scheme must be wss (Twilio connects only to secure WebSockets)")]
    NotWebSocket,
}

/// Parse an absolute http(s) URL with a host, no credentials and no fragment.
fn parse_http_url(text: &str) -> Result<Url, UrlError> {
    let url = Url::parse(text)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Forbidden("user name or password"));
    }
    if url.fragment().is_some() {
        return Err(UrlError::Forbidden("a #fragment"));
    }
    Ok(url)
}

/// Parse an absolute http(s) URL that paths are appended to, so it has no
/// query either (a bare `?` parses as an empty query and is refused too).
fn parse_base_url(text: &str) -> Result<Url, UrlError> {
    let url = parse_http_url(text)?;
    if url.query().is_some() {
        return Err(UrlError::Forbidden("a ?query"));
    }
    Ok(url)
}

/// A `wss://` URL with a host: where Twilio streams a call's audio or
/// relays a conversation (Twilio connects to no other kind).
#[derive(Clone, PartialEq, Eq)]
pub struct WebSocketUrl(String);

impl WebSocketUrl {
    /// Accept an absolute `wss://` URL with a host, kept as written.
    ///
    /// # Errors
    /// When the text is not such a URL.
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        let url = Url::parse(text)?;
        if url.scheme() != "wss" || !url.has_host() {
            return Err(UrlError::NotWebSocket);
        }
        Ok(Self(text.to_owned()))
    }

    /// A built-in URL; `url` must be one [`Self::parse`] accepts, which the
    /// tests of the code that defines it check.
    pub(crate) fn from_static(url: &'static str) -> Self {
        Self(url.to_owned())
    }
}

as_text!(WebSocketUrl, |v| &v.0);

/// The public origin Twilio uses to reach flexbridge, e.g. `https://flexbridge.fly.dev`.
///
/// Kept as written, host case included: Twilio signs the URL exactly as it
/// is configured in its console (the signature check also tries the
/// normalised form). A path prefix is allowed (for a proxy that mounts
/// flexbridge under `/flexbridge`); it is kept without its trailing `/`.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicBaseUrl(String);

impl PublicBaseUrl {
    /// Parse an absolute http(s) URL without query or fragment.
    ///
    /// # Errors
    /// When the text is not such a URL.
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        let url = parse_base_url(text)?;
        // Text a URL cannot carry as written (spaces, non-ASCII) is kept in
        // the parser's encoded form, which is what Twilio requests then.
        let written = text.bytes().all(|b| b.is_ascii_graphic());
        let kept = if written { text } else { url.as_str() };
        Ok(Self(kept.trim_end_matches('/').to_owned()))
    }

    /// The absolute URL of a path served by flexbridge (`path` starts with `/`).
    pub fn join(&self, path: &str) -> String {
        [self.0.as_str(), path].concat()
    }
}

as_text!(PublicBaseUrl, |v| &v.0);

/// An origin of an API flexbridge calls (Twilio, Flex, a vendor); tests
/// point these at local servers.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiBaseUrl(String);

impl ApiBaseUrl {
    /// Parse an absolute http(s) URL without query or fragment.
    ///
    /// # Errors
    /// When the text is not such a URL.
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        let url = parse_base_url(text)?;
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// A built-in default origin; `origin` must be an http(s) URL with no
    /// path, query or trailing `/` (checked by this module's tests).
    pub(crate) fn from_static(origin: &'static str) -> Self {
        Self(origin.to_owned())
    }

    /// The absolute URL of an API path (`path` starts with `/`).
    pub fn join(&self, path: &str) -> String {
        [self.0.as_str(), path].concat()
    }
}

as_text!(ApiBaseUrl, |v| &v.0);

/// The Trigger webhook URL of a Studio flow
/// (`https://webhooks.twilio.com/v1/Accounts/AC…/Flows/FW…`).
///
/// It may already carry a query string; flexbridge keeps it and appends its
/// own parameters after it.
#[derive(Clone, PartialEq, Eq)]
pub struct StudioWebhookUrl(Url);

impl StudioWebhookUrl {
    /// Parse an absolute http(s) URL without fragment.
    ///
    /// # Errors
    /// When the text is not such a URL.
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        parse_http_url(text).map(Self)
    }

    /// The flow's SID, when this is a Trigger webhook URL of Twilio's US1
    /// region (`https://webhooks.twilio.com/…/Flows/FW…`).
    pub fn flow_sid(&self) -> Option<FlowSid> {
        let mut segments = self.0.path_segments()?.rev();
        let sid = segments.next()?;
        let studio =
            self.0.host_str() == Some("webhooks.twilio.com") && segments.next()? == "Flows";
        studio.then(|| FlowSid::parse(sid).ok()).flatten()
    }

    /// This URL with `params` appended to its query, every name and value
    /// percent-encoded: everything but RFC 3986 "unreserved" characters.
    pub fn with_params<'a>(&self, params: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
        // Percent-encoded names and values need no further escaping (and the
        // URL has no fragment), so they are appended to the URL's text
        // rather than passed through the URL parser again.
        let mut url = String::with_capacity(self.0.as_str().len() + 256);
        url.push_str(self.0.as_str());
        // `?` when there is no query yet; nothing after an empty one.
        let mut separator = match self.0.query() {
            None => Some('?'),
            Some("") => None,
            Some(_) => Some('&'),
        };
        for (name, value) in params {
            if let Some(separator) = separator {
                url.push(separator);
            }
            separator = Some('&');
            url.extend(utf8_percent_encode(name, QUERY_COMPONENT));
            url.push('=');
            url.extend(percent_encoding::percent_encode(value, QUERY_COMPONENT));
        }
        url
    }
}

as_text!(StudioWebhookUrl, |v| v.0.as_str());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_us1_trigger_webhook_url_names_a_flow() {
        let fw = "FW0123456789abcdef0123456789abcdef";
        let sid = |url: &str| StudioWebhookUrl::parse(url).unwrap().flow_sid();
        let trigger = format!("https://webhooks.twilio.com/v1/Accounts/AC1/Flows/{fw}?x=1");
        assert_eq!(sid(&trigger).map(|s| s.to_string()), Some(fw.to_owned()));
        for other in [
            format!("https://webhooks.dublin.ie1.twilio.com/v1/Accounts/AC1/Flows/{fw}"),
            format!("https://webhooks.twilio.com/v1/Accounts/AC1/Executions/{fw}"),
            format!("https://webhooks.twilio.com/v1/Accounts/AC1/Flows/{fw}/"),
            "https://webhooks.twilio.com/v1/Accounts/AC1/Flows/FW1".to_owned(),
            "https://webhooks.twilio.com/".to_owned(),
        ] {
            assert!(sid(&other).is_none(), "{other}");
        }
    }

    #[test]
    fn websocket_urls_must_be_wss_with_a_host_and_are_kept_as_written() {
        let url = WebSocketUrl::parse("wss://Agent.example.com:8443/relay?t=1").unwrap();
        assert_eq!(url.as_ref(), "wss://Agent.example.com:8443/relay?t=1");
        for bad in [
            "",
            "ws://media.asapp.com/s",
            "https://media.asapp.com/s",
            "wss://",
            "media.asapp.com",
        ] {
            assert!(WebSocketUrl::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn public_base_url_drops_trailing_slash_and_keeps_prefix() {
        let base = PublicBaseUrl::parse("https://flexbridge.fly.dev/").unwrap();
        assert_eq!(
            base.join("/refer-handler"),
            "https://flexbridge.fly.dev/refer-handler"
        );
        let prefixed = PublicBaseUrl::parse("https://example.com/fb/").unwrap();
        assert_eq!(
            prefixed.join("/refer-handler"),
            "https://example.com/fb/refer-handler"
        );
    }

    #[test]
    fn public_base_url_keeps_the_host_as_written() {
        let base = PublicBaseUrl::parse("https://MyCompany.Example.com/Flex/").unwrap();
        assert_eq!(base.join("/x"), "https://MyCompany.Example.com/Flex/x");
        let encoded = PublicBaseUrl::parse("https://bücher.example/a b").unwrap();
        assert_eq!(encoded.join("/x"), "https://xn--bcher-kva.example/a%20b/x");
    }

    #[test]
    fn base_urls_reject_relative_query_and_other_schemes() {
        for bad in [
            "flexbridge.fly.dev",
            "/x",
            "ftp://a.b",
            "https://a.b/?x=1",
            "https://a.b/?",
            "https://u:p@a.b",
            "https://u@a.b",
            "https://:p@a.b",
            "https://a.b/#f",
        ] {
            assert!(PublicBaseUrl::parse(bad).is_err(), "{bad:?}");
            assert!(ApiBaseUrl::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn studio_url_keeps_its_query_and_encodes_every_added_value() {
        let studio =
            StudioWebhookUrl::parse("https://webhooks.twilio.com/v1/Flows/FW1?a=1&b=x%20y")
                .unwrap();
        let url = studio.with_params([
            ("FlowEvent", &b"return"[..]),
            ("K", "a&b=c d/é+!*'()~".as_bytes()),
        ]);
        assert_eq!(
            url,
            "https://webhooks.twilio.com/v1/Flows/FW1?a=1&b=x%20y&FlowEvent=return&K=a%26b%3Dc%20d%2F%C3%A9%2B%21%2A%27%28%29~"
        );
        let plain = StudioWebhookUrl::parse("https://webhooks.twilio.com/v1/Flows/FW1").unwrap();
        assert_eq!(
            plain.with_params([("A", &b"\xff"[..])]),
            "https://webhooks.twilio.com/v1/Flows/FW1?A=%FF"
        );
        assert_eq!(
            plain.with_params([("A", &b""[..]), ("B", b"1")]),
            "https://webhooks.twilio.com/v1/Flows/FW1?A=&B=1"
        );
        assert_eq!(
            plain.with_params([]),
            "https://webhooks.twilio.com/v1/Flows/FW1"
        );
        let empty_query =
            StudioWebhookUrl::parse("https://webhooks.twilio.com/v1/Flows/FW1?").unwrap();
        assert_eq!(
            empty_query.with_params([("A", &b"1"[..])]),
            "https://webhooks.twilio.com/v1/Flows/FW1?A=1"
        );
        // What the URL parser makes of the result is the same text.
        for built in [url, plain.with_params([("A", &b"\xff \x00?#"[..])])] {
            assert_eq!(Url::parse(&built).unwrap().as_str(), built);
        }
    }
}
