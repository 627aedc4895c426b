//! The AI Assistant tool headers: `X-Session-Id` and `X-Identity`. Neither
//! parser may panic; what parses must be usable (a dedup key that is the
//! SID, a channel type, an address) and an identity must survive being
//! written out and parsed again.
//!
//! Input: a header value (the route only sees values that are visible
//! ASCII and spaces, but the parsers take any text).

#![no_main]

use flexbridge::domain::{Identity, SessionId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    if let Ok(session) = SessionId::parse(&text) {
        let key = session.dedup_key();
        assert_eq!(key.len(), 34, "a dedup key is a SID: {key}");
        assert!(text.contains(&key));
    }

    if let Ok(identity) = Identity::parse(&text) {
        assert!(!identity.trait_name().is_empty() && !identity.value().is_empty());
        assert!(!identity.trait_name().contains(':'));
        let _ = identity.channel_type().as_str();
        assert!(!identity.address().is_empty());
        let again = Identity::parse(&identity.to_string()).expect("a parsed identity re-parses");
        assert_eq!(again, identity);
    }
});
