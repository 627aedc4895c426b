#!/usr/bin/env bash
# A Twilio AI Assistant hands a conversation to a Studio flow.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
post_tool /tools/studio-handover \
  'conversations__IS0123456789abcdef0123456789abcdef/CH0123456789abcdef0123456789abcdef' \
  'phone:+14155550100' \
  '{}'
