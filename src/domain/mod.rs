//! Domain types: every value from Twilio, an assistant or the environment is
//! parsed into one of these before any route logic sees it.

/// `AsRef<str>` and `Debug` (and `Display` with `display`) for a type whose
/// text is `$text`, so every value reads and prints as what it holds.
macro_rules! as_text {
    ($type:ty, |$value:ident| $text:expr $(, $display:ident)?) => {
        impl AsRef<str> for $type {
            fn as_ref(&self) -> &str {
                let $value = self;
                $text
            }
        }
        impl std::fmt::Debug for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_ref())
            }
        }
        $(as_text!(@$display $type);)?
    };
    (@display $type:ty) => {
        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_ref())
            }
        }
    };
}

mod phone;
mod session;
mod sid;
mod sip;
mod store_url;
mod web_url;

pub use phone::{E164, E164Error};
pub use session::{ChannelType, Identity, IdentityError, SessionId, SessionIdError};
pub use sid::{
    AccountSid, ApiKeySid, CallSid, ConversationServiceSid, ConversationSid, FlowSid, Sid,
    SidError, SidKind, WorkflowSid, WorkspaceSid,
};
pub use sip::{
    ReferTo, ReferToError, SESSION_HISTORY_HEADER, SessionHistoryKey, SessionKeyError, SipHeader,
    SipHost, SipHostError, USER_TO_USER_HEADER, is_dns_name, user_to_user_data,
};
pub use store_url::{HandoverStoreSetting, RedisUrl, StoreUrlError};
pub use web_url::{
    ApiBaseUrl, PublicBaseUrl, StudioWebhookUrl, UrlError, WebSocketUrl, encode_query_text,
};
