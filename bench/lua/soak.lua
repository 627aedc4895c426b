-- wrk: a steady mixed load for the soak run. Each connection sends, in
-- turn, /receive-call, /refer-handler and a /tools/flex-handover for a new
-- conversation, and waits BENCH_DELAY_MS between requests, so the rate is
-- about connections x 1000 / (delay + latency) whatever the server's speed
-- (wrk2-style pacing with Debian's wrk).
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local dir = os.getenv("BENCH_WORK")
local voice_body = common.slurp(dir .. "/receive-call.body")
local voice_signature = common.trim(common.slurp(dir .. "/receive-call.signature"))
local refer_body = common.slurp(dir .. "/refer-handler.body")
local refer_signature = common.trim(common.slurp(dir .. "/refer-handler.signature"))
local tool_body = common.slurp(dir .. "/flex-handover.body")
local tool_signature = common.trim(common.slurp(dir .. "/flex-handover.signature"))
local tool_path = common.trim(common.slurp(dir .. "/flex-handover.path"))
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "10")
local threads = 0
local counter = 0

function setup(thread)
  thread:set("thread_number", threads)
  threads = threads + 1
end

function request()
  counter = counter + 1
  local form = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  local turn = counter % 3
  if turn == 0 then
    form["X-Twilio-Signature"] = voice_signature
    return wrk.format("POST", "/receive-call", form, voice_body)
  elseif turn == 1 then
    form["X-Twilio-Signature"] = refer_signature
    return wrk.format("POST", "/refer-handler", form, refer_body)
  end
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-Twilio-Signature"] = tool_signature,
    ["X-Session-Id"] = string.format(
      "webhook:conversations__IS0123456789abcdef0123456789abcdef/CHfeed%04x%024x", thread_number, counter),
    ["X-Identity"] = "phone:+14155550100",
  }
  return wrk.format("POST", tool_path, headers, tool_body)
end

function delay()
  return delay_ms
end

done = common.done
