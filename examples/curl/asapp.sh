#!/usr/bin/env bash
# A call to ASAPP GenerativeAgent: the call-comes-in webhook, then Twilio's
# <Connect action> request when the stream ends (flexbridge reads the call
# transfer from ASAPP; an AGENT transfer enqueues the caller into Flex).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
post_voice /engage CallSid=CA0123456789abcdef0123456789abcdef customerId=c-42 input_accountTier=gold
post_voice '/call-complete?callSid=CA0123456789abcdef0123456789abcdef' \
  CallSid=CA0123456789abcdef0123456789abcdef CallStatus=in-progress
