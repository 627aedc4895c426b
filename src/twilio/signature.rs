//! Twilio request signatures (`X-Twilio-Signature`), computed and checked
//! exactly as Twilio's own Node.js library (twilio 6.x) does, so any request
//! Twilio signs is accepted here and nothing else is.
//!
//! # Format
//!
//! ```text
//! signature = base64( HMAC( key, url || params ) )
//! params    = for each name, sorted by UTF-16 code units:
//!               for each distinct value, sorted likewise: name || value
//! ```
//!
//! HMAC-SHA1 with the auth token, unless the request names a webhook
//! SharedKey in `X-Twilio-Webhooks-Signature-Settings`: then the key is that
//! SharedKey's secret and the hash the one the header names ([`Algorithm`]).
//!
//! The `url` is the full URL Twilio requested, query included. A request is
//! valid when the signature matches one of these URL forms, tried in order:
//! the URL as received without its port and with the scheme's default port;
//! then the URL normalised as a WHATWG URL parser does, without and with the
//! port, and both again with the query re-encoded the way Node's legacy
//! `querystring` module does. JSON bodies are signed over the URL alone, whose
//! `bodySHA256` parameter must equal the hex SHA-256 of the raw body.

use std::borrow::Cow;
use std::cmp::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit as _, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Bytes in the longest MAC, an HMAC-SHA256.
const MAC_LEN: usize = 32;
/// Characters of its padded Base64, the form `X-Twilio-Signature` carries.
const SIGNATURE_LEN: usize = MAC_LEN.div_ceil(3) * 4;

/// The hash a signature is made with, as Twilio names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `HMAC_SHA1`: the auth token's, and a SharedKey's by default.
    HmacSha1,
    /// `HMAC_SHA256`: a SharedKey's, when its Webhook Setting says so.
    HmacSha256,
}

/// An algorithm name Twilio's library does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported webhook signature algorithm {0:?} (supported: HMAC_SHA1, HMAC_SHA256)")]
pub struct UnsupportedAlgorithm(pub String);

impl Algorithm {
    /// The algorithm an `X-Twilio-Webhooks-Signature-Settings` value names,
    /// read as twilio-node's `getSignatureAlgorithm` reads it: the first
    /// comma-separated `algorithm=` part with a value (name as written,
    /// value in any case); none means `HMAC_SHA1`.
    ///
    /// # Format
    ///
    /// ```text
    /// settings = part *( "," part )     ; e.g. key=webhooks_sharedkey_…,algorithm=HMAC_SHA256
    /// part     = name "=" value         ; spaces around name and value ignored
    /// ```
    ///
    /// # Errors
    /// [`UnsupportedAlgorithm`] for a name other than `HMAC_SHA1` or `HMAC_SHA256`.
    pub fn from_settings(settings: &str) -> Result<Self, UnsupportedAlgorithm> {
        let named = settings
            .split(',')
            .filter_map(|part| part.split_once('='))
            .filter(|(name, _)| name.trim() == "algorithm")
            .map(|(_, value)| value.trim())
            .find(|value| !value.is_empty());
        match named {
            None => Ok(Self::HmacSha1),
            Some(name) if name.eq_ignore_ascii_case("HMAC_SHA1") => Ok(Self::HmacSha1),
            Some(name) if name.eq_ignore_ascii_case("HMAC_SHA256") => Ok(Self::HmacSha256),
            Some(name) => Err(UnsupportedAlgorithm(name.to_owned())),
        }
    }
}

/// A secret keyed into HMAC once; cloning the state is cheap.
#[derive(Clone)]
pub struct SignatureKey(Keyed);

#[derive(Clone)]
enum Keyed {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
}

impl SignatureKey {
    /// Key HMAC-SHA1 with the account's auth token.
    pub fn new(auth_token: &str) -> Self {
        Self::with_algorithm(auth_token, Algorithm::HmacSha1)
    }

    /// Key `algorithm` with `secret` (a SharedKey's, or the auth token).
    pub fn with_algorithm(secret: &str, algorithm: Algorithm) -> Self {
        // HMAC takes keys of any length: hashed when longer than a block,
        // padded when shorter. `new_from_slice` cannot fail for it.
        let keyed = match algorithm {
            Algorithm::HmacSha1 => Hmac::new_from_slice(secret.as_bytes()).map(Keyed::Sha1),
            Algorithm::HmacSha256 => Hmac::new_from_slice(secret.as_bytes()).map(Keyed::Sha256),
        };
        match keyed {
            Ok(keyed) => Self(keyed),
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        }
    }

    /// The signature Twilio sends for a request to `url` with `params`.
    pub fn sign(&self, url: &str, params: &[(String, String)]) -> String {
        let (mac, len) = self.mac(url, &sorted_params(owned_pairs(params)));
        BASE64.encode(&mac[..len])
    }

    /// Whether `signature` is valid for a form or query request to `url`.
    pub fn validate(&self, signature: &str, url: &str, params: &[(String, String)]) -> bool {
        self.validate_pairs(signature, url, owned_pairs(params))
    }

    /// [`Self::validate`] for borrowed pairs.
    pub fn validate_pairs<'a>(
        &self,
        signature: &str,
        url: &str,
        params: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> bool {
        first_signer(std::iter::once(((), self)), signature, url, params).is_some()
    }

    /// The HMAC of `url` followed by each name and value, and its length.
    fn mac(&self, url: &str, params: &[(&str, &str)]) -> ([u8; MAC_LEN], usize) {
        fn digest<M: Mac + Clone>(
            mac: &M,
            url: &str,
            params: &[(&str, &str)],
        ) -> ([u8; MAC_LEN], usize) {
            let mut mac = mac.clone();
            mac.update(url.as_bytes());
            for (name, value) in params {
                mac.update(name.as_bytes());
                mac.update(value.as_bytes());
            }
            let bytes = mac.finalize().into_bytes();
            let mut out = [0u8; MAC_LEN];
            out[..bytes.len()].copy_from_slice(&bytes);
            (out, bytes.len())
        }
        match &self.0 {
            Keyed::Sha1(mac) => digest(mac, url, params),
            Keyed::Sha256(mac) => digest(mac, url, params),
        }
    }

    /// Whether `signature` is the Base64 of the MAC of `url` and `params`,
    /// compared in constant time.
    fn signs(&self, signature: &str, url: &str, params: &[(&str, &str)]) -> bool {
        let (mac, len) = self.mac(url, params);
        let mut expected = [0u8; SIGNATURE_LEN];
        match BASE64.encode_slice(&mac[..len], &mut expected) {
            Ok(len) => signature.as_bytes().ct_eq(&expected[..len]).into(),
            Err(_) => false,
        }
    }

    /// Whether `signature` is valid for a JSON request: the URL (with its
    /// `bodySHA256` parameter) is signed without parameters, and the first
    /// `bodySHA256` value equals the lower-case hex SHA-256 of `body`.
    pub fn validate_with_body(&self, signature: &str, url: &str, body: &[u8]) -> bool {
        first_signer_with_body(std::iter::once(((), self)), signature, url, body).is_some()
    }
}

/// What names the first of `keys` that made `signature` for a form or query
/// request to `url` with `params`. Every key is tried on a URL form before
/// the next form is built, so the pairs are sorted and the forms built once
/// however many keys there are (two while the auth token is rotated).
pub fn first_signer<'a, 'k, T>(
    keys: impl Iterator<Item = (T, &'k SignatureKey)> + Clone,
    signature: &str,
    url: &str,
    params: impl Iterator<Item = (&'a str, &'a str)>,
) -> Option<T> {
    let params = sorted_params(params);
    let signer = |candidate: &str| {
        keys.clone()
            .find(|(_, key)| key.signs(signature, candidate, &params))
            .map(|(which, _)| which)
    };
    if let Some(which) = signer(&remove_port(url)).or_else(|| signer(&add_port(url))) {
        return Some(which);
    }
    // A URL the WHATWG parser rejects cannot have been signed by Twilio.
    let normalized = url::Url::parse(url).ok()?;
    let without_port = remove_port(normalized.as_str()).into_owned();
    let with_port = add_port(normalized.as_str()).into_owned();
    signer(&without_port)
        .or_else(|| signer(&with_port))
        .or_else(|| signer(&legacy_query(&without_port)))
        .or_else(|| signer(&legacy_query(&with_port)))
}

/// [`first_signer`] for a JSON request (see
/// [`SignatureKey::validate_with_body`]); the body is hashed once.
pub fn first_signer_with_body<'k, T>(
    keys: impl Iterator<Item = (T, &'k SignatureKey)> + Clone,
    signature: &str,
    url: &str,
    body: &[u8],
) -> Option<T> {
    let parsed = url::Url::parse(url).ok()?;
    let claimed = parsed
        .query_pairs()
        .find(|(name, _)| name == "bodySHA256")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    // Evaluate both checks, so timing does not tell which one failed.
    let signer = first_signer(keys, signature, url, std::iter::empty());
    let body_ok = constant_time_eq(&claimed, &body_sha256_hex(body));
    signer.filter(|_| body_ok)
}

/// Lower-case hex SHA-256 of a body, as Twilio puts it in `bodySHA256`.
pub fn body_sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Compare in constant time (for equal lengths; lengths are not secret).
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// JavaScript's default sort order: by UTF-16 code units, not code points.
///
/// UTF-8 bytes sort like code points, and code points like UTF-16 units
/// except where the first difference is a character from U+E000 to U+FFFF
/// (one unit, UTF-8 lead byte `EE`/`EF`) against a supplementary one (a
/// surrogate pair from `D800`, lead byte `F0`–`F4`): UTF-16 puts the pair
/// first. Comparing bytes and correcting that one case avoids transcoding.
fn js_order(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let Some(i) = a.iter().zip(b).position(|(x, y)| x != y) else {
        return a.len().cmp(&b.len());
    };
    // A difference inside a character (same lead byte) is in continuation
    // bytes, 80–BF, and byte order is right there.
    match (a[i], b[i]) {
        (0xEE..=0xEF, 0xF0..) => Ordering::Greater,
        (0xF0.., 0xEE..=0xEF) => Ordering::Less,
        (x, y) => x.cmp(&y),
    }
}

/// Every (name, value) pair once, sorted by name then value: what Twilio's
/// library signs (it groups values by name, drops repeated values and
/// sorts names and values).
fn sorted_params<'a>(params: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<(&'a str, &'a str)> {
    let mut pairs: Vec<(&str, &str)> = params.collect();
    pairs.sort_unstable_by(|a, b| js_order(a.0, b.0).then_with(|| js_order(a.1, b.1)));
    pairs.dedup();
    pairs
}

/// Borrowed views of owned pairs.
fn owned_pairs(params: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    params
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
}

/// A URL cut at its authority, without normalising anything.
struct UrlParts<'a> {
    scheme: &'a str,
    user_info: &'a str,
    host: &'a str,
    port: &'a str,
    rest: &'a str,
}

/// Split `scheme://[userinfo@]host[:port]rest`; `None` without `scheme://`.
fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let colon = url.find("://")?;
    let mut scheme_name = url[..colon].bytes();
    let valid_scheme = scheme_name.next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme_name.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !valid_scheme {
        return None;
    }
    let after = &url[colon + 3..];
    let authority_len = after.find(['/', '?', '#']).unwrap_or(after.len());
    let authority = &after[..authority_len];
    let user_info_len = authority.rfind('@').map_or(0, |at| at + 1);
    let host_and_port = &authority[user_info_len..];
    // A colon starts the port only after an IPv6 literal's closing bracket.
    let search_from = host_and_port.rfind(']').map_or(0, |b| b + 1);
    let port_start = host_and_port[search_from..]
        .find(':')
        .map_or(host_and_port.len(), |i| i + search_from);
    Some(UrlParts {
        scheme: &url[..colon + 3],
        user_info: &authority[..user_info_len],
        host: &host_and_port[..port_start],
        port: &host_and_port[port_start..],
        rest: &after[authority_len..],
    })
}

/// The URL with any port removed.
fn remove_port(url: &str) -> Cow<'_, str> {
    match split_url(url) {
        Some(p) if !p.port.is_empty() => {
            Cow::Owned(format!("{}{}{}{}", p.scheme, p.user_info, p.host, p.rest))
        }
        _ => Cow::Borrowed(url),
    }
}

/// The URL with the scheme's default port added when it has none
/// (`:443` for https, `:80` for anything else, as Twilio's library does).
fn add_port(url: &str) -> Cow<'_, str> {
    match split_url(url) {
        Some(p) if p.port.is_empty() => {
            let port = if p.scheme.eq_ignore_ascii_case("https://") {
                ":443"
            } else {
                ":80"
            };
            Cow::Owned(format!(
                "{}{}{}{port}{}",
                p.scheme, p.user_info, p.host, p.rest
            ))
        }
        _ => Cow::Borrowed(url),
    }
}

/// What Node's `querystring.escape` leaves as it is.
const NODE_QUERYSTRING: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*');

/// Whether a name is a JavaScript array index ("0" … "4294967294", no
/// leading zeros): a JS object lists such keys first, in numeric order.
fn js_array_index(name: &str) -> Option<u32> {
    // Digits only: Rust's parser would also take a leading `+`.
    let canonical = name == "0" || !name.starts_with('0');
    if !canonical || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse::<u32>().ok().filter(|&n| n < u32::MAX)
}

/// Re-encode the query as `querystring.stringify(querystring.parse(q))`:
/// pieces decoded as a form (`+` is a space), names grouped at their first
/// position with array-index names first, then each `name=value` escaped.
fn legacy_query(url: &str) -> Cow<'_, str> {
    let Some(start) = url.find('?') else {
        return Cow::Borrowed(url);
    };
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(&url.as_bytes()[start + 1..]) {
        match grouped.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value.into_owned()),
            None => grouped.push((name.into_owned(), vec![value.into_owned()])),
        }
    }
    // Stable sort: array-index names first by value, the rest keep their order.
    grouped.sort_by_key(|(name, _)| js_array_index(name).map_or((1, 0), |n| (0, n)));
    let escape = |s: &str| utf8_percent_encode(s, NODE_QUERYSTRING).to_string();
    let query: Vec<String> = grouped
        .iter()
        .flat_map(|(name, values)| {
            values
                .iter()
                .map(move |v| format!("{}={}", escape(name), escape(v)))
        })
        .collect();
    Cow::Owned(format!("{}?{}", &url[..start], query.join("&")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn first_signer_names_the_key_that_signed_on_any_url_form() {
        let (old, new) = (
            SignatureKey::new("old-token"),
            SignatureKey::new("new-token"),
        );
        let keys = [("primary", &old), ("secondary", &new)];
        let params = pairs(&[("CallSid", "CA1"), ("From", "+1")]);
        let signer = |signature: &str, url: &str| {
            first_signer(keys.into_iter(), signature, url, owned_pairs(&params))
        };
        // Signed with the port, checked without it: the second form.
        let signed = new.sign("https://example.com:443/voice?a=1", &params);
        assert_eq!(
            signer(&signed, "https://example.com/voice?a=1"),
            Some("secondary")
        );
        let signed = old.sign("https://example.com/voice?a=1", &params);
        assert_eq!(
            signer(&signed, "https://example.com/voice?a=1"),
            Some("primary")
        );
        let other = SignatureKey::new("another").sign("https://example.com/voice?a=1", &params);
        assert_eq!(signer(&other, "https://example.com/voice?a=1"), None);

        let body = br#"{"a":1}"#;
        let url = format!(
            "https://example.com/tools?bodySHA256={}",
            body_sha256_hex(body)
        );
        let signed = new.sign(&url, &[]);
        let with_body = |body: &[u8]| first_signer_with_body(keys.into_iter(), &signed, &url, body);
        assert_eq!(with_body(body), Some("secondary"));
        assert_eq!(with_body(b"{}"), None);
    }

    /// Twilio's published example from its webhook security documentation.
    #[test]
    fn signs_twilios_documented_example() {
        let key = SignatureKey::new("12345");
        let params = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(key.sign(url, &params), "GvWf1cFY/Q7PnoempGyD5oXAezc=");
        assert!(key.validate("GvWf1cFY/Q7PnoempGyD5oXAezc=", url, &params));
        assert!(key.validate(
            "GvWf1cFY/Q7PnoempGyD5oXAezc=",
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &params
        ));
        assert!(!key.validate(
            "GvWf1cFY/Q7PnoempGyD5oXAezc=",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &params
        ));
    }

    #[test]
    fn ports_are_added_and_removed_like_twilio_node() {
        assert_eq!(remove_port("https://a.b:8443/x?y=1"), "https://a.b/x?y=1");
        assert_eq!(add_port("https://a.b/x"), "https://a.b:443/x");
        assert_eq!(add_port("http://a.b"), "http://a.b:80");
        assert_eq!(add_port("HTTPS://u:p@a.b/x"), "HTTPS://u:p@a.b:443/x");
        assert_eq!(add_port("https://[::1]/x"), "https://[::1]:443/x");
        assert_eq!(remove_port("https://[::1]:8443/x"), "https://[::1]/x");
        assert_eq!(add_port("not a url"), "not a url");
        // A port already there stays, a scheme starts with a letter, and the
        // port follows the last `@` and an IPv6 `]`, even right after a colon.
        assert_eq!(add_port("https://a.b:8443/x"), "https://a.b:8443/x");
        assert_eq!(add_port("1https://a.b/x"), "1https://a.b/x");
        assert_eq!(add_port("https://u:@a.b/x"), "https://u:@a.b:443/x");
        assert_eq!(remove_port("https://[::]:8443/x"), "https://[::]/x");
    }

    #[test]
    fn array_indexes_are_javascripts() {
        assert_eq!(js_array_index("0"), Some(0));
        assert_eq!(js_array_index("4294967294"), Some(4_294_967_294));
        for name in ["4294967295", "10000000000", "01", "+5", "-1", "1a", ""] {
            assert_eq!(js_array_index(name), None, "{name:?}");
        }
    }

    #[test]
    fn legacy_query_matches_nodes_querystring() {
        assert_eq!(
            legacy_query("https://a/p?b=a+b&x=%7E&q='"),
            "https://a/p?b=a%20b&x=~&q='"
        );
        assert_eq!(
            legacy_query("https://a/p?x=1&10=a&2=b&02=c"),
            "https://a/p?2=b&10=a&x=1&02=c"
        );
        assert_eq!(
            legacy_query("https://a/p?a=1&b&&a=2"),
            "https://a/p?a=1&a=2&b="
        );
        assert_eq!(legacy_query("https://a/p?"), "https://a/p?");
    }

    #[test]
    fn repeated_values_are_deduplicated_and_sorted_by_utf16() {
        let params = pairs(&[
            ("b", "2"),
            ("a", "z"),
            ("b", "1"),
            ("b", "2"),
            ("_", "x"),
            ("B", "y"),
        ]);
        let sorted = sorted_params(owned_pairs(&params));
        assert_eq!(
            sorted,
            vec![("B", "y"), ("_", "x"), ("a", "z"), ("b", "1"), ("b", "2")]
        );
        // U+FF41 sorts after U+1F600 by code point but before it in UTF-16.
        let params = pairs(&[("\u{FF41}", ""), ("\u{1F600}", "")]);
        let sorted = sorted_params(owned_pairs(&params));
        assert_eq!(sorted[0].0, "\u{1F600}");
    }

    proptest::proptest! {
        /// The byte comparison with its one correction orders any two
        /// strings exactly as comparing their UTF-16 code units does.
        #[test]
        fn js_order_is_utf16_order(
            a in "[a-z\u{7f}-\u{800}\u{d7ff}\u{e000}-\u{ffff}\u{10000}-\u{10ffff}]{0,6}",
            b in "[a-z\u{7f}-\u{800}\u{d7ff}\u{e000}-\u{ffff}\u{10000}-\u{10ffff}]{0,6}",
            shared in "[a-z\u{e000}-\u{ffff}\u{10000}-\u{10ffff}]{0,3}",
        ) {
            let (a, b) = (format!("{shared}{a}"), format!("{shared}{b}"));
            proptest::prop_assert_eq!(js_order(&a, &b), a.encode_utf16().cmp(b.encode_utf16()));
        }
    }

    #[test]
    fn signatures_of_the_wrong_length_or_encoding_are_refused() {
        let key = SignatureKey::new("12345");
        let params = pairs(&[("CallSid", "CA1234567890ABCDE"), ("Caller", "+14158675310")]);
        let url = "https://mycompany.com/myapp.php";
        let signature = key.sign(url, &params);
        assert!(key.validate(&signature, url, &params));
        assert!(!key.validate(&signature[..27], url, &params));
        assert!(!key.validate(&format!("{signature}="), url, &params));
        assert!(!key.validate(&signature.replace('=', ""), url, &params));
        assert!(!key.validate("", url, &params));
        let unsorted = pairs(&[("Caller", "+14158675310"), ("CallSid", "CA1234567890ABCDE")]);
        assert!(key.validate(&signature, url, &unsorted));
        let repeated = pairs(&[
            ("Caller", "+14158675310"),
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
        ]);
        assert!(key.validate(&signature, url, &repeated));
    }

    #[test]
    fn body_hash_must_match_the_first_body_sha256() {
        let key = SignatureKey::new("token");
        let body = br#"{"a":1}"#;
        let url = format!("https://a.b/tools?bodySHA256={}", body_sha256_hex(body));
        let signature = key.sign(&url, &[]);
        assert!(key.validate_with_body(&signature, &url, body));
        assert!(!key.validate_with_body(&signature, &url, br#"{"a":2}"#));
    }
}
