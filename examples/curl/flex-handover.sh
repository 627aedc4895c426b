#!/usr/bin/env bash
# A Twilio AI Assistant hands a WhatsApp conversation to a Flex agent
# (with --dev: a dry run showing the exact Interactions request).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
post_tool /tools/flex-handover \
  'webhook:conversations__IS0123456789abcdef0123456789abcdef/CH0123456789abcdef0123456789abcdef' \
  'whatsapp:+14155550100' \
  '{"summary":"Wants a refund for order 42"}'
