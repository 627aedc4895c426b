//! The AI Assistant tool headers: `X-Session-Id` and `X-Identity`. Neither
//! parser may panic; a session's SIDs are in the header and its canonical
//! form (the task's `handoff.session_id`) parses back to it; an identity
//! gives a channel type and an address without control characters.
//!
//! Input: a header value (the route only sees values that are visible
//! ASCII and spaces, but the parsers take any text).

#![no_main]

use flexbridge::domain::{Identity, SessionId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    if let Ok(session) = SessionId::parse(&text) {
        let sid = match &session {
            SessionId::Conversation { conversation, .. } => conversation.as_ref(),
            SessionId::Voice { call } => call.as_ref(),
        };
        assert!(text.contains(sid), "{sid} is not in {text:?}");
        assert_eq!(
            SessionId::parse(&session.to_string()).as_ref(),
            Ok(&session)
        );
    }

    if let Ok(identity) = Identity::parse(&text) {
        let _ = identity.channel_type().as_str();
        let address = identity.address();
        assert!(!address.is_empty() && !address.chars().any(char::is_control));
    }
});
