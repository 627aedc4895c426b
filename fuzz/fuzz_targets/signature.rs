//! `X-Twilio-Signature` checks on arbitrary requests, their parameters
//! decoded by `FormParams::decode` (which must give exactly the pairs
//! `url::form_urlencoded` gives): `validate` and `validate_with_body` must
//! never panic, whatever the URL, parameters,
//! body or claimed signature; and what `sign` produces must validate
//! (form requests), as must a JSON request whose URL carries the body's
//! `bodySHA256`. The key is HMAC-SHA1 for a token of even length and
//! HMAC-SHA256 (a SharedKey's) for an odd one; the claimed signature is
//! also read as a SharedKey settings header, which must never panic.
//!
//! Input, split at the first four newlines:
//! `auth token \n claimed signature \n url \n form-encoded params \n body`.

#![no_main]

use flexbridge::twilio::FormParams;
use flexbridge::twilio::signature::{Algorithm, SignatureKey, body_sha256_hex};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut fields = data.splitn(5, |&b| b == b'\n');
    let mut next = || String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let (token, claimed, url, params) = (next(), next(), next(), next());
    let body = data
        .splitn(5, |&b| b == b'\n')
        .nth(4)
        .unwrap_or_default()
        .to_vec();
    // Decoded as a request's form is, and as the url crate decodes it.
    let form = FormParams::decode(params.as_bytes());
    let reference: Vec<(String, String)> = url::form_urlencoded::parse(params.as_bytes())
        .into_owned()
        .collect();
    let pairs: Vec<(String, String)> = form
        .iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(pairs, reference, "{params:?}");
    let params = &pairs;
    let algorithm = if token.len() % 2 == 0 {
        Algorithm::HmacSha1
    } else {
        Algorithm::HmacSha256
    };
    let key = SignatureKey::with_algorithm(&token, algorithm);
    let _ = Algorithm::from_settings(&claimed);

    // Arbitrary claims: no panic, the same answer for the decoded form.
    assert_eq!(
        key.validate(&claimed, &url, params),
        key.validate_pairs(&claimed, &url, form.iter())
    );
    let _ = key.validate_with_body(&claimed, &url, &body);

    // What Twilio would send validates.
    let signature = key.sign(&url, params);
    assert!(
        key.validate(&signature, &url, params),
        "sign then validate: {url:?} {params:?}"
    );

    // A JSON request: the URL gets bodySHA256, the URL alone is signed.
    if let Ok(mut parsed) = url::Url::parse(&url) {
        if parsed.query_pairs().any(|(name, _)| name == "bodySHA256") {
            return;
        }
        parsed
            .query_pairs_mut()
            .append_pair("bodySHA256", &body_sha256_hex(&body));
        let json_url = parsed.as_str();
        if url::Url::parse(json_url).is_err() {
            return;
        }
        let signature = key.sign(json_url, &[]);
        assert!(
            key.validate_with_body(&signature, json_url, &body),
            "sign then validate_with_body: {json_url:?}"
        );
        if !body.is_empty() {
            let mut other = body.clone();
            other[0] ^= 1;
            assert!(!key.validate_with_body(&signature, json_url, &other));
        }
    }
});
