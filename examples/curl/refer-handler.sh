#!/usr/bin/env bash
# The assistant transferred the call: Twilio reports the REFER's Refer-To
# header as ReferTransferTarget; flexbridge returns the caller to Studio (or Flex).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
post_voice /refer-handler CallSid=CA0123456789abcdef0123456789abcdef \
  'ReferTransferTarget=<sip:+18005551234@twilio.com?User-to-User=dev%3A%3Alatest%3A%3A893499%3A%3Aabc%3Bencoding%3Dascii&X-Watson-Assistant-Session-History-Key=dev%3A%3Alatest%3A%3A893499%3A%3Aabc&X-Customer-Tier=gold>'
