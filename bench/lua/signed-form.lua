-- wrk: POST the same Twilio webhook on every request, a ~600-byte form
-- body with its X-Twilio-Signature, both computed once by bench/run (with
-- `flexbridge sign`) and read here from the files named by BENCH_BODY and
-- BENCH_SIGNATURE. The request is built once, so wrk's cost per request is
-- the same for every server measured.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

wrk.method = "POST"
wrk.body = common.slurp(os.getenv("BENCH_BODY"))
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["X-Twilio-Signature"] = common.trim(common.slurp(os.getenv("BENCH_SIGNATURE")))

done = common.done
