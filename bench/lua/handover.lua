-- wrk: POST /tools/flex-handover for a different conversation every time
-- (a repeat would be answered from flexbridge's dedup memory without
-- calling Flex). The JSON body and the signature over the URL's
-- bodySHA256 are fixed (BENCH_BODY, BENCH_SIGNATURE); X-Session-Id carries
-- the run (BENCH_RUN), the wrk thread and a counter. With
-- BENCH_SESSION_IN_BODY=1 the session and identity also go in the body,
-- for a runtime that does not pass headers to functions.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local body = common.slurp(os.getenv("BENCH_BODY"))
local signature = common.trim(common.slurp(os.getenv("BENCH_SIGNATURE")))
local run = tonumber(os.getenv("BENCH_RUN") or "0")
local in_body = os.getenv("BENCH_SESSION_IN_BODY") == "1"
local identity = "phone:+14155550100"
local threads = 0
local counter = 0

function setup(thread)
  thread:set("thread_number", threads)
  threads = threads + 1
end

function request()
  counter = counter + 1
  local session = string.format(
    "webhook:conversations__IS0123456789abcdef0123456789abcdef/CH%04x%04x%024x",
    run, thread_number, counter)
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-Twilio-Signature"] = signature,
    ["X-Session-Id"] = session,
    ["X-Identity"] = identity,
  }
  local payload = body
  if in_body then
    payload = string.format('{"summary":"Customer asks for a refund","SessionId":"%s","Identity":"%s"}',
      session, identity)
  end
  return wrk.format("POST", nil, headers, payload)
end

done = common.done
