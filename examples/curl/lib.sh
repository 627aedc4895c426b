# Shared by the curl examples: where flexbridge is, and how to sign.
#
#   BASE=https://flexbridge.fly.dev TWILIO_AUTH_TOKEN=… ./receive-call.sh
#
# Without TWILIO_AUTH_TOKEN the requests are unsigned, which only a --dev
# instance (or one with TWILIO_VALIDATE_SIGNATURES=false) accepts.

BASE="${BASE:-http://localhost:8080}"
# The flexbridge binary that computes signatures.
FLEXBRIDGE="${FLEXBRIDGE:-flexbridge}"

# post_voice PATH NAME=VALUE...: POST a Twilio voice webhook, signed when a token is set.
post_voice() {
  local path="$1"
  shift
  if [ -n "${TWILIO_AUTH_TOKEN:-}" ]; then
    # `flexbridge sign` prints the signature, then a ready curl command.
    eval "$("$FLEXBRIDGE" sign --url "$BASE$path" "$@" | tail -n 1)"
  else
    local args=()
    for param in "$@"; do args+=(--data-urlencode "$param"); done
    curl -sS -X POST "$BASE$path" "${args[@]}"
  fi
  echo
}

# post_tool PATH SESSION IDENTITY JSON: call an AI Assistant tool with TOOL_API_KEY when set.
post_tool() {
  local auth=()
  if [ -n "${TOOL_API_KEY:-}" ]; then auth=(-H "Authorization: Bearer $TOOL_API_KEY"); fi
  curl -sS -X POST "$BASE$1" "${auth[@]}" \
    -H "X-Session-Id: $2" -H "X-Identity: $3" \
    -H 'Content-Type: application/json' --data-binary "$4"
  echo
}
