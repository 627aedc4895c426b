#!/usr/bin/env bash
# A call to a Dialogflow CX agent through <VirtualAgent>: the connect
# webhook, then Twilio's <Connect action> request on a live-agent handoff
# (flexbridge enqueues the caller into Flex with the handoff parameters).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
post_voice /virtual-agent/connect CallSid=CA0123456789abcdef0123456789abcdef
post_voice /virtual-agent/complete CallSid=CA0123456789abcdef0123456789abcdef \
  CallStatus=in-progress VirtualAgentProvider=DialogflowCX VirtualAgentStatus=live-agent-handoff \
  'VirtualAgentProviderData={"ConversationId":"projects/p/locations/global/agents/a/sessions/s-1","AgentHandoffParameters":{"reason":"billing"}}'
