#!/usr/bin/env bash
# A call to an AI agent on Twilio ConversationRelay: the connect webhook,
# then Twilio's <Connect action> request when the agent ends the session
# with handoffData (flexbridge enqueues the caller into Flex).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
post_voice /conversation-relay/connect CallSid=CA0123456789abcdef0123456789abcdef customerId=c-42
post_voice /conversation-relay/complete CallSid=CA0123456789abcdef0123456789abcdef \
  CallStatus=in-progress SessionId=VX0123456789abcdef0123456789abcdef SessionStatus=ended \
  'HandoffData={"reason":"billing","summary":"Disputes a charge"}'
