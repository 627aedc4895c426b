//! `flexbridge sign`: the `X-Twilio-Signature` Twilio would send for a
//! request, and a curl command that replays it, for testing a deployed
//! instance by hand.

use std::fmt::Write as _;

use crate::domain::encode_query_text;
use crate::twilio::SignatureKey;
use crate::twilio::signature::body_sha256_hex;

/// A request to sign.
#[derive(Debug, Clone)]
pub struct SignRequest {
    /// The full public URL, as configured in Twilio.
    pub url: String,
    /// Form parameters, in order (`NAME=VALUE` on the command line).
    pub params: Vec<(String, String)>,
    /// A JSON body and the file it came from, instead of parameters.
    pub body: Option<(String, Vec<u8>)>,
    /// The `X-Twilio-Webhooks-Signature-Settings` to send: signed with a SharedKey.
    pub settings: Option<&'static str>,
}

/// The settings header of a request signed as a Webhook Rule's SharedKey
/// signs it; Twilio also names the key, which flexbridge does not read.
pub const SHARED_KEY_SETTINGS: &str = "algorithm=HMAC_SHA256";

/// What `sign` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The URL actually signed (with `bodySHA256` added for a body).
    pub url: String,
    /// The `X-Twilio-Signature` value.
    pub signature: String,
    /// The headers that carry it, as `Name: value` lines: the signature's,
    /// and the settings header of a SharedKey signature.
    pub headers: Vec<String>,
    /// A ready-to-paste curl command.
    pub curl: String,
}

/// Why a request cannot be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// A parameter without `=`.
    #[error("parameter {0:?} is not NAME=VALUE")]
    BadParam(String),
    /// Both parameters and a body.
    #[error("give either NAME=VALUE parameters or --body, not both")]
    ParamsAndBody,
    /// The URL already has a `bodySHA256` for another body.
    #[error("the URL's bodySHA256 does not match the body's SHA-256 ({0})")]
    BodyHashMismatch(String),
}

/// Split `NAME=VALUE` at the first `=`.
///
/// # Errors
/// [`SignError::BadParam`] without `=`.
pub fn parse_param(text: &str) -> Result<(String, String), SignError> {
    text.split_once('=')
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .ok_or_else(|| SignError::BadParam(text.to_owned()))
}

/// Quote for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Sign a request and build its curl command.
///
/// # Errors
/// When both parameters and a body are given, or the URL's `bodySHA256`
/// disagrees with the body.
pub fn sign(key: &SignatureKey, request: &SignRequest) -> Result<Signed, SignError> {
    match &request.body {
        None => {
            let signature = key.sign(&request.url, &request.params);
            let headers = signed_headers(&signature, request.settings);
            let mut curl = format!(
                "curl -sS -X POST {}{}",
                shell_quote(&request.url),
                curl_headers(&headers)
            );
            for (name, value) in &request.params {
                // curl encodes the value of NAME=VALUE but sends NAME as is.
                let _ = write!(
                    curl,
                    " --data-urlencode {}",
                    shell_quote(&format!("{}={value}", encode_query_text(name)))
                );
            }
            Ok(Signed {
                url: request.url.clone(),
                signature,
                headers,
                curl,
            })
        }
        Some(_) if !request.params.is_empty() => Err(SignError::ParamsAndBody),
        Some((file, body)) => {
            let hash = body_sha256_hex(body);
            let url = with_body_hash(&request.url, &hash)?;
            let signature = key.sign(&url, &[]);
            let headers = signed_headers(&signature, request.settings);
            let curl = format!(
                "curl -sS -X POST {} -H 'Content-Type: application/json'{} --data-binary {}",
                shell_quote(&url),
                curl_headers(&headers),
                shell_quote(&format!("@{file}"))
            );
            Ok(Signed {
                url,
                signature,
                headers,
                curl,
            })
        }
    }
}

/// The signature's header, and the settings header if any.
fn signed_headers(signature: &str, settings: Option<&str>) -> Vec<String> {
    std::iter::once(format!("X-Twilio-Signature: {signature}"))
        .chain(settings.map(|s| format!("X-Twilio-Webhooks-Signature-Settings: {s}")))
        .collect()
}

/// curl's `-H` option for each header.
fn curl_headers(headers: &[String]) -> String {
    headers
        .iter()
        .map(|header| format!(" -H {}", shell_quote(header)))
        .collect()
}

/// The URL with `bodySHA256={hash}` added (or checked, if already present).
fn with_body_hash(url: &str, hash: &str) -> Result<String, SignError> {
    if let Ok(parsed) = url::Url::parse(url)
        && let Some((_, existing)) = parsed.query_pairs().find(|(n, _)| n == "bodySHA256")
    {
        return if existing == hash {
            Ok(url.to_owned())
        } else {
            Err(SignError::BodyHashMismatch(hash.to_owned()))
        };
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{separator}bodySHA256={hash}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_request_gives_the_documented_signature_and_a_quoted_curl() {
        let key = SignatureKey::new("12345");
        let request = SignRequest {
            url: "https://mycompany.com/myapp.php?foo=1&bar=2".into(),
            params: [
                "CallSid=CA1234567890ABCDE",
                "Caller=+14158675310",
                "Digits=1234",
                "From=+14158675310",
                "To=+18005551212",
            ]
            .iter()
            .map(|p| parse_param(p).unwrap())
            .collect(),
            body: None,
            settings: None,
        };
        let signed = sign(&key, &request).unwrap();
        assert_eq!(signed.signature, "GvWf1cFY/Q7PnoempGyD5oXAezc=");
        assert!(signed.curl.starts_with(
            "curl -sS -X POST 'https://mycompany.com/myapp.php?foo=1&bar=2' -H 'X-Twilio-Signature: GvWf1cFY/Q7PnoempGyD5oXAezc=' --data-urlencode 'CallSid=CA1234567890ABCDE'"
        ));
    }

    #[test]
    fn body_request_adds_the_body_hash_to_the_url() {
        let key = SignatureKey::new("t");
        let body = br#"{"x":"it's"}"#.to_vec();
        let request = SignRequest {
            url: "https://a.b/tools/x?y=1".into(),
            params: vec![],
            body: Some(("in.json".into(), body.clone())),
            settings: Some(SHARED_KEY_SETTINGS),
        };
        let signed = sign(&key, &request).unwrap();
        assert_eq!(
            signed.url,
            format!(
                "https://a.b/tools/x?y=1&bodySHA256={}",
                body_sha256_hex(&body)
            )
        );
        assert!(key.validate_with_body(&signed.signature, &signed.url, &body));
        assert_eq!(
            signed.headers,
            [
                format!("X-Twilio-Signature: {}", signed.signature),
                "X-Twilio-Webhooks-Signature-Settings: algorithm=HMAC_SHA256".to_owned(),
            ]
        );
        assert!(
            signed.curl.ends_with(
                " -H 'X-Twilio-Webhooks-Signature-Settings: algorithm=HMAC_SHA256' --data-binary '@in.json'"
            ),
            "{}",
            signed.curl
        );
    }

    /// A `bodySHA256` already in the URL is kept when it is the body's, and
    /// refused when it is not; parameters and a body together are refused.
    #[test]
    fn a_body_hash_already_in_the_url_is_checked_and_params_exclude_a_body() {
        let key = SignatureKey::new("t");
        let body = b"{}".to_vec();
        let hash = body_sha256_hex(&body);
        let request = |url: String, params: Vec<(String, String)>| SignRequest {
            url,
            params,
            body: Some(("in.json".into(), body.clone())),
            settings: None,
        };
        let same = format!("https://a.b/tools/x?bodySHA256={hash}");
        let other = format!("https://a.b/tools/x?bodySHA256={}", "0".repeat(64));

        let signed = sign(&key, &request(same.clone(), vec![]));
        assert_eq!(signed.map(|s| s.url), Ok(same.clone()));
        let signed = sign(&key, &request(other, vec![]));
        assert_eq!(
            signed.map(|s| s.url),
            Err(SignError::BodyHashMismatch(hash))
        );
        let signed = sign(&key, &request(same, vec![("A".into(), "1".into())]));
        assert_eq!(signed.map(|s| s.url), Err(SignError::ParamsAndBody));
    }

    #[test]
    fn quotes_survive_the_shell() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
