//! Domain types: every value from Twilio, an assistant or the environment is
//! parsed into one of these before any route logic sees it.

mod phone;
mod session;
mod sid;
mod sip;
mod store_url;
mod web_url;

pub use phone::{E164, E164Error};
pub use session::{ChannelType, Identity, IdentityError, SessionId, SessionIdError};
pub use sid::{
    AccountSid, ApiKeySid, CallSid, ConversationServiceSid, ConversationSid, FlowSid,
    InteractionSid, Sid, SidError, SidKind, WorkflowSid, WorkspaceSid,
};
pub use sip::{
    ReferTo, ReferToError, SESSION_HISTORY_HEADER, SessionHistoryKey, SessionKeyError, SipHeader,
    SipHost, SipHostError, USER_TO_USER_HEADER, is_dns_name, user_to_user_data,
};
pub use store_url::{HandoverStoreSetting, RedisUrl, StoreUrlError};
pub use web_url::{
    ApiBaseUrl, PublicBaseUrl, StudioWebhookUrl, UrlError, WebSocketUrl, encode_query_text,
};
