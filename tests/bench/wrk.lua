-- wrk script for tests/bench: optional session cookies, and one machine-readable line.
--
-- WRK_COOKIE="sid1,sid2,..." sends `Cookie: sid=<one of them>` on every request, taking
-- them in turn: each id is a user with a real, persistent session (its counter rises).
-- Empty or unset: no cookie, so every request starts a new session (Set-Cookie, new key).
-- done() prints `WRKJSON {...}` with counts, errors and latency percentiles in µs.
local sids = {}
local i = 0

init = function(args)
  local list = os.getenv("WRK_COOKIE") or ""
  for s in string.gmatch(list, "[^,]+") do sids[#sids + 1] = s end
end

request = function()
  if #sids > 0 then
    i = i % #sids + 1
    return wrk.format("GET", nil, { ["Cookie"] = "sid=" .. sids[i] })
  end
  return wrk.format("GET")
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
