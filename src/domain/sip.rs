//! SIP pieces flexbridge reads or writes: the assistant's SIP host, the
//! Refer-To header of a transfer (RFC 3261) and its User-to-User header
//! (RFC 7433).
//!
//! The parsers never fail on odd-but-harmless input (unknown headers, stray
//! `>` in a value, invalid percent escapes, bytes that are not UTF-8): they
//! keep what they can and let the caller decide. They fail only when the
//! text is not a Refer-To at all.

use std::borrow::Cow;
use std::fmt;

use percent_encoding::percent_decode;

/// Host name (and optional port) of the AI assistant's SIP endpoint.
///
/// # Format
///
/// `host [":" port]` where host is a DNS name (letters, digits, `-` and `.`)
/// or an IPv4 address. Stored in lower case. Nothing that could add a user,
/// URI parameters or headers to a SIP URI (`@`, `;`, `?`, spaces) is accepted.
#[derive(Clone, PartialEq, Eq)]
pub struct SipHost(String);

/// Why a text is not a SIP host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected a host name such as public.voip.us-south.assistant.watson.cloud.ibm.com, \
     optionally with :port, and without sip:/sips: or a phone number"
)]
pub struct SipHostError;

impl SipHost {
    /// Parse a host name with an optional port.
    ///
    /// # Errors
    /// When the text is not a DNS name or IPv4 address with an optional port.
    pub fn parse(text: &str) -> Result<Self, SipHostError> {
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        };
        if let Some(port) = port {
            let valid_port = !port.is_empty()
                && port.len() <= 5
                && port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u16>().is_ok_and(|p| p > 0);
            if !valid_port {
                return Err(SipHostError);
            }
        }
        if is_dns_name(host) {
            Ok(Self(text.to_ascii_lowercase()))
        } else {
            Err(SipHostError)
        }
    }

    /// The host without its port: the name DNS resolves.
    pub fn name(&self) -> &str {
        self.0.rsplit_once(':').map_or(&self.0, |(host, _)| host)
    }
}

/// Whether `host` is a DNS name (letters, digits and inner hyphens in dot-
/// separated labels of at most 63 bytes, 253 in all); digits-only labels
/// make IPv4 addresses pass too.
pub fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

as_text!(SipHost, |v| &v.0, display);

/// One header carried in the header part of a SIP URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipHeader {
    /// The name as written (after one percent-decode); compare it with
    /// [`SipHeader::is`], since SIP header names are case-insensitive.
    pub name: String,
    /// The value after exactly one percent-decode. Bytes, not text: a value
    /// may legitimately decode to something that is not UTF-8 (binary UUI),
    /// and flexbridge passes it on without loss.
    pub value: Vec<u8>,
}

impl SipHeader {
    /// Whether this header has the given name, ignoring ASCII case.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The value as text, with invalid UTF-8 replaced by U+FFFD.
    pub fn value_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.value)
    }
}

/// A parsed Refer-To header value, as Twilio passes it in `ReferTransferTarget`:
/// the headers of its URI, which is all flexbridge reads.
///
/// # Format
///
/// ```text
/// refer-to     = ( name-addr / addr-spec ) *( ";" param )
/// name-addr    = [ display-name ] "<" addr-spec ">"
/// display-name = quoted-string / *( token LWS )
/// addr-spec    = scheme ":" target [ "?" header *( "&" header ) ]
/// header       = hname [ "=" hvalue ]
/// ```
///
/// Choices beyond the RFC, made to lose nothing from real transfers:
/// - a header is split at its *first* `=`, so `=` inside a value survives;
/// - with angle brackets the URI ends at the *last* `>`, so an unescaped `>`
///   inside a header value stays in that value;
/// - names and values are percent-decoded exactly once; an invalid escape
///   such as `%ZZ` is kept literally; `+` is not a space (SIP is not a form);
/// - empty header segments (`&&`, a trailing `&`) and nameless headers are skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferTo {
    headers: Vec<SipHeader>,
}

/// Why a text is not a Refer-To value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferToError {
    /// Nothing but white space.
    #[error("the Refer-To value is empty")]
    Empty,
    /// A quoted display name without its closing quote.
    #[error("the Refer-To display name has no closing quote")]
    UnterminatedDisplayName,
    /// A `<` without a later `>`, or text between a display name and `<`.
    #[error("the Refer-To URI is not enclosed in matching angle brackets")]
    UnbalancedBrackets,
    /// The URI does not start with `scheme:`.
    #[error("the Refer-To URI has no scheme (such as sip:)")]
    MissingScheme,
}

impl ReferTo {
    /// Parse a Refer-To header value.
    ///
    /// # Errors
    /// When the value is empty, its brackets or display-name quotes do not
    /// match, or the URI has no scheme.
    pub fn parse(text: &str) -> Result<Self, ReferToError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ReferToError::Empty);
        }
        let addr_spec = addr_spec(text)?;
        if !has_scheme(addr_spec) {
            return Err(ReferToError::MissingScheme);
        }
        let headers = addr_spec
            .split_once('?')
            .map_or_else(Vec::new, |(_, headers)| parse_headers(headers));
        Ok(Self { headers })
    }

    /// Every header of the URI, in order of appearance.
    pub fn headers(&self) -> &[SipHeader] {
        &self.headers
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&SipHeader> {
        self.headers.iter().find(|h| h.is(name))
    }
}

/// The addr-spec of `[display-name] <addr-spec> [;params]`, or of a bare one.
fn addr_spec(text: &str) -> Result<&str, ReferToError> {
    let rest = if let Some(quoted) = text.strip_prefix('"') {
        after_quoted(quoted)
            .ok_or(ReferToError::UnterminatedDisplayName)?
            .trim_start()
    } else {
        match text.find('<') {
            Some(open) => &text[open..],
            None => return Ok(text),
        }
    };
    let inner = rest
        .strip_prefix('<')
        .ok_or(ReferToError::UnbalancedBrackets)?;
    let close = inner.rfind('>').ok_or(ReferToError::UnbalancedBrackets)?;
    Ok(inner[..close].trim())
}

/// What follows the closing quote of a quoted-string body (after its
/// opening quote), whose `\` escapes may hide a quote.
fn after_quoted(text: &str) -> Option<&str> {
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some(&text[i + 1..]),
            '\\' => {
                chars.next()?;
            }
            _ => {}
        }
    }
    None
}

/// RFC 3986 scheme: a letter, then letters, digits, `+`, `-`, `.`, then `:`.
fn has_scheme(uri: &str) -> bool {
    let Some((scheme, _)) = uri.split_once(':') else {
        return false;
    };
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn parse_headers(part: &str) -> Vec<SipHeader> {
    part.split('&')
        .filter_map(|segment| {
            let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
            // Header names are plain tokens in practice: decoded only when
            // they carry an escape.
            let name = if name.contains('%') {
                percent_decode(name.as_bytes()).decode_utf8_lossy()
            } else {
                Cow::Borrowed(name)
            };
            let name = name.trim().to_owned();
            (!name.is_empty()).then(|| {
                // Sized once: decoding only shortens.
                let mut decoded = Vec::with_capacity(value.len());
                decoded.extend(percent_decode(value.as_bytes()));
                SipHeader {
                    name,
                    value: decoded,
                }
            })
        })
        .collect()
}

/// The watsonx session history key: what Studio or Flex needs to fetch the
/// conversation the caller had with the assistant.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionHistoryKey(Vec<u8>);

impl SessionHistoryKey {
    /// The raw bytes of the key, for lossless percent-encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key as text, with invalid UTF-8 replaced by U+FFFD.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl fmt::Debug for SessionHistoryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string_lossy())
    }
}

/// The header watsonx uses for the key when the dialog sets its own User-to-User.
pub const SESSION_HISTORY_HEADER: &str = "X-Watson-Assistant-Session-History-Key";
/// The RFC 7433 header that carries the key by default.
pub const USER_TO_USER_HEADER: &str = "User-to-User";

/// Why no session history key could be read from a Refer-To.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionKeyError {
    /// Neither header is present, or both are empty.
    #[error("the Refer-To has neither {SESSION_HISTORY_HEADER} nor User-to-User data")]
    Missing,
    /// The User-to-User header says `encoding=hex` but its data is not hex.
    #[error("the User-to-User data is marked encoding=hex but is not valid hex")]
    InvalidHex,
}

impl SessionKeyError {
    /// Stable code reported to Studio as `FlexbridgeError` and in logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "missing_session_history_key",
            Self::InvalidHex => "invalid_user_to_user",
        }
    }
}

impl ReferTo {
    /// The session history key: the `X-Watson-Assistant-Session-History-Key`
    /// header when present and non-empty, otherwise the User-to-User data.
    ///
    /// # Errors
    /// When neither yields a key, or the User-to-User hex is invalid.
    pub fn session_history_key(&self) -> Result<SessionHistoryKey, SessionKeyError> {
        if let Some(header) = self.header(SESSION_HISTORY_HEADER)
            && !header.value.trim_ascii().is_empty()
        {
            return Ok(SessionHistoryKey(header.value.trim_ascii().to_vec()));
        }
        let uui = self
            .header(USER_TO_USER_HEADER)
            .ok_or(SessionKeyError::Missing)?;
        let data = user_to_user_data(&uui.value)?;
        if data.is_empty() {
            return Err(SessionKeyError::Missing);
        }
        Ok(SessionHistoryKey(data))
    }

    /// Headers to forward to Studio: every `X-…` header except the session key.
    pub fn forwarded_headers(&self) -> impl Iterator<Item = &SipHeader> {
        self.headers.iter().filter(|h| {
            let prefix = h.name.as_bytes().get(..2);
            prefix.is_some_and(|p| p.eq_ignore_ascii_case(b"x-")) && !h.is(SESSION_HISTORY_HEADER)
        })
    }
}

/// Read the data of a User-to-User value (RFC 7433).
///
/// # Format
///
/// ```text
/// UUI-value = uui-data *( ";" uui-param )
/// uui-data  = token / quoted-string
/// uui-param = name [ "=" value ]        ; e.g. encoding=hex, purpose=…
/// ```
///
/// The data is the text before the first `;`, unquoted and trimmed; it is
/// hex-decoded when a parameter `encoding` (any case) has the value `hex`
/// (any case). Other encodings are taken as they are.
///
/// # Errors
/// [`SessionKeyError::InvalidHex`] when hex is declared but the data is not hex.
pub fn user_to_user_data(value: &[u8]) -> Result<Vec<u8>, SessionKeyError> {
    let mut parts = value.split(|&b| b == b';');
    let data = parts.next().unwrap_or_default().trim_ascii();
    let data = data
        .strip_prefix(b"\"")
        .and_then(|d| d.strip_suffix(b"\""))
        .unwrap_or(data);
    let hex_encoded = parts.any(|param| {
        let (name, value) = match param.iter().position(|&b| b == b'=') {
            Some(eq) => (&param[..eq], &param[eq + 1..]),
            None => (param, &b""[..]),
        };
        name.trim_ascii().eq_ignore_ascii_case(b"encoding")
            && value.trim_ascii().eq_ignore_ascii_case(b"hex")
    });
    if hex_encoded {
        hex::decode(data).map_err(|_| SessionKeyError::InvalidHex)
    } else {
        Ok(data.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(refer_to: &str) -> Result<String, SessionKeyError> {
        ReferTo::parse(refer_to)
            .unwrap()
            .session_history_key()
            .map(|k| k.to_string_lossy())
    }

    /// A host name of `length` bytes in labels of at most 63, DNS's limit (a
    /// name's is 253).
    fn name_of_length(length: usize) -> String {
        let mut name = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63),
        ]
        .join(".");
        name.truncate(length);
        name
    }

    #[test]
    fn sip_host_accepts_names_ports_and_ipv4() {
        let longest_label = format!("{}.example.com", "a".repeat(63));
        let longest_name = name_of_length(253);
        for good in [
            "public.voip.us-south.assistant.watson.cloud.ibm.com",
            "localhost",
            "sip.example.com:5061",
            "10.0.0.1",
            "sip.example.com:1",
            "sip.example.com:65535",
            &longest_label,
            &longest_name,
        ] {
            assert!(SipHost::parse(good).is_ok(), "{good:?}");
        }
        assert_eq!(
            SipHost::parse("SIP.Example.COM").unwrap().as_ref(),
            "sip.example.com"
        );
        let name = |text| SipHost::parse(text).unwrap().name().to_owned();
        assert_eq!(name("Sip.Example.com:5061"), "sip.example.com");
        assert_eq!(name("10.0.0.1"), "10.0.0.1");
    }

    #[test]
    fn sip_host_rejects_anything_that_changes_the_uri() {
        for bad in [
            "",
            "sips:public.voip.example.com",
            "+1800@host.com",
            "host.com;transport=tcp",
            "host.com?X=1",
            "host .com",
            "-host.com",
            "host-.com",
            "host..com",
            "host.com:0",
            "host.com:70000",
            "host.com:065535",
            "host.com:",
            &format!("{}.example.com", "a".repeat(64)),
            &name_of_length(254),
            "[::1]",
            "host.com/path",
        ] {
            assert!(SipHost::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn skips_a_quoted_display_name_with_escaped_quotes_and_brackets() {
        let r = ReferTo::parse(
            r#""Agent \"<sip:x@y?X-A=2>\"" <sip:+1800@twilio.com?X-A=1>;method=INVITE"#,
        )
        .unwrap();
        assert_eq!(r.headers().len(), 1);
        assert_eq!(r.header("x-a").unwrap().value, b"1");
    }

    #[test]
    fn bare_addr_spec_without_brackets_is_accepted() {
        let r = ReferTo::parse("sip:+1800@twilio.com?X-A=b%20c").unwrap();
        assert_eq!(r.header("X-A").unwrap().value, b"b c");
    }

    #[test]
    fn splits_each_header_at_its_first_equals_sign() {
        let r = ReferTo::parse("<sip:a@b?X-Q=a=b=c&X-E=>").unwrap();
        assert_eq!(r.header("X-Q").unwrap().value, b"a=b=c");
        assert_eq!(r.header("X-E").unwrap().value, b"");
    }

    #[test]
    fn uri_ends_at_the_last_angle_bracket() {
        let r = ReferTo::parse("<sip:a@b?X-Note=1>2>").unwrap();
        assert_eq!(r.header("X-Note").unwrap().value, b"1>2");
    }

    #[test]
    fn rejects_values_that_are_not_a_refer_to() {
        assert_eq!(ReferTo::parse("  "), Err(ReferToError::Empty));
        assert_eq!(
            ReferTo::parse("<sip:a@b"),
            Err(ReferToError::UnbalancedBrackets)
        );
        assert_eq!(
            ReferTo::parse("\"x <sip:a@b>"),
            Err(ReferToError::UnterminatedDisplayName)
        );
        assert_eq!(
            ReferTo::parse("\"x\" sip:a@b"),
            Err(ReferToError::UnbalancedBrackets)
        );
        assert_eq!(
            ReferTo::parse("<+18005551234@b>"),
            Err(ReferToError::MissingScheme)
        );
        assert_eq!(ReferTo::parse("hello"), Err(ReferToError::MissingScheme));
        assert_eq!(
            ReferTo::parse("<1sip:a@b>"),
            Err(ReferToError::MissingScheme)
        );
    }

    #[test]
    fn session_key_prefers_the_watson_header_over_user_to_user() {
        let r = "<sip:a@b?User-to-User=6869%3Bencoding%3Dhex&X-Watson-Assistant-Session-History-Key=k1>";
        assert_eq!(key(r).unwrap(), "k1");
    }

    #[test]
    fn session_key_debugs_as_its_text_with_invalid_utf8_replaced() {
        let key = ReferTo::parse("<sip:a@b?User-to-User=ff6b%3Bencoding%3Dhex>")
            .unwrap()
            .session_history_key()
            .unwrap();
        assert_eq!(format!("{key:?}"), format!("{:?}", "\u{FFFD}k"));
    }

    #[test]
    fn session_key_falls_back_to_user_to_user_data() {
        let r = "<sip:a@b?User-to-User=dev%3A%3Alatest%3A%3A1%3Bencoding%3Dascii>";
        assert_eq!(key(r).unwrap(), "dev::latest::1");
        let hex = "<sip:a@b?user-to-user=6b6579%3B%20Encoding%3DHEX>";
        assert_eq!(key(hex).unwrap(), "key");
        // A parameter without a value is a name only: no encoding.
        let bare = "<sip:a@b?User-to-User=6b6579%3Bpurpose%3Bencoding%3Dhex>";
        assert_eq!(key(bare).unwrap(), "key");
        let bare = "<sip:a@b?User-to-User=6b6579%3Bencoding>";
        assert_eq!(key(bare).unwrap(), "6b6579");
    }

    #[test]
    fn session_key_errors_have_stable_codes() {
        assert_eq!(
            key("<sip:a@b>").unwrap_err().code(),
            "missing_session_history_key"
        );
        assert_eq!(
            key("<sip:a@b?User-to-User=zz%3Bencoding%3Dhex>")
                .unwrap_err()
                .code(),
            "invalid_user_to_user"
        );
        assert_eq!(
            key("<sip:a@b?User-to-User=%3Bencoding%3Dascii>")
                .unwrap_err()
                .code(),
            "missing_session_history_key"
        );
    }

    #[test]
    fn forwards_x_headers_except_the_session_key() {
        let r = ReferTo::parse(
            "<sip:a@b?User-to-User=1&x-lower=2&X-Watson-Assistant-Session-History-Key=3&X-Up=4&Other=5>",
        )
        .unwrap();
        let names: Vec<_> = r.forwarded_headers().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["x-lower", "X-Up"]);
    }
}
