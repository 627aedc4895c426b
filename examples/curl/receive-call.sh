#!/usr/bin/env bash
# An incoming call: flexbridge answers TwiML that dials the watsonx assistant.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
post_voice /receive-call CallSid=CA0123456789abcdef0123456789abcdef Called=+18005551234 From=+14155550100
