//! Form decoding, exactly as every webhook and tool request goes through it
//! (`flexbridge::twilio::FormParams::decode`): never a panic, exactly the pairs
//! `url::form_urlencoded::parse` yields (flexbridge's decoder has a fast
//! path of its own), at most one pair per `&`-separated piece, and decoded
//! pairs survive encoding and decoding again unchanged (so the parameters the signature covers are the ones a
//! route reads). The parameters are then signed, as a request's would be.
//!
//! Input: a request body or query string (any bytes).

#![no_main]

use flexbridge::twilio::SignatureKey;
use flexbridge::twilio::FormParams;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let params = FormParams::decode(data);
    let pairs = params.to_vec();
    let reference: Vec<(String, String)> = url::form_urlencoded::parse(data).into_owned().collect();
    assert_eq!(pairs, reference, "{data:?}");
    let pieces = data.split(|&b| b == b'&').count();
    assert!(pairs.len() <= pieces);

    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    assert_eq!(FormParams::decode(encoded.as_bytes()), params, "{encoded}");

    let key = SignatureKey::new("fuzz-token");
    let signature = key.sign("https://flexbridge.example.com/receive-call", &pairs);
    assert!(key.validate(
        &signature,
        "https://flexbridge.example.com/receive-call",
        &pairs
    ));
    assert!(key.validate_form(
        &signature,
        "https://flexbridge.example.com/receive-call",
        &params
    ));
});
