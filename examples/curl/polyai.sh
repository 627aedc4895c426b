#!/usr/bin/env bash
# A call to a PolyAI agent through its Twilio connector: the call-comes-in
# webhook, the handoff state as a Studio flow's HTTP request reads it, then
# Twilio's <Connect action> request when PolyAI hands the call back
# (flexbridge enqueues the caller into Flex with the handoff state).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
post_voice /polyai/connect CallSid=CA0123456789abcdef0123456789abcdef
post_voice /polyai/handoff-state CallSid=CA0123456789abcdef0123456789abcdef
post_voice /polyai/call-complete CallSid=CA0123456789abcdef0123456789abcdef CallStatus=in-progress
