//! `X-Twilio-Signature` checks on arbitrary requests: `validate`,
//! `validate_form` (which must agree with `validate`) and
//! `validate_with_body` must never panic, whatever the URL, parameters,
//! body or claimed signature; and what `sign` produces must validate
//! (form requests), as must a JSON request whose URL carries the body's
//! `bodySHA256`.
//!
//! Input, split at the first four newlines:
//! `auth token \n claimed signature \n url \n form-encoded params \n body`.

#![no_main]

use flexbridge::twilio::FormParams;
use flexbridge::twilio::signature::{SignatureKey, body_sha256_hex};
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
    let form = FormParams::decode(params.as_bytes());
    let params = form.to_vec();
    let key = SignatureKey::new(&token);

    // Arbitrary claims: no panic, and the same answer for decoded form
    // parameters as for the same pairs as strings.
    assert_eq!(
        key.validate_form(&claimed, &url, &form),
        key.validate(&claimed, &url, &params)
    );
    let _ = key.validate_with_body(&claimed, &url, &body);

    // What Twilio would send validates.
    let signature = key.sign(&url, &params);
    assert!(
        key.validate(&signature, &url, &params) && key.validate_form(&signature, &url, &form),
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
