-- Helpers shared by the wrk scripts of bench/run.
local common = {}

function common.slurp(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

function common.trim(text)
  return (text:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- One machine-readable line after wrk's own report, for bench/run to parse:
-- errors are every socket error plus every answer that was not 2xx/3xx.
function common.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d errors=%d non2xx=%d timeouts=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end

return common
