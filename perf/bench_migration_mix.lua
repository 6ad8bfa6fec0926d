-- The requests of perf/bench_migration.py, for `wrk -s`.
--
-- BENCH_MIGRATION_REQUESTS (environment) holds the requests, one a line:
-- METHOD <TAB> PATH <TAB> BODY (BODY may be empty; a body is sent as JSON).
-- Headers given with `wrk -H` (the API key) go on every request.
--
-- One line: a static request, as plain wrk sends it (no Lua on the hot path), so
-- a one-endpoint run costs the load generator what `wrk URL` costs. Several
-- lines: request() hands them out in turn, each formatted once in init(), as
-- wrk's SCRIPTING advises for fast servers; every connection walks the same
-- rotation, so the mix is exact over any whole number of turns.
--
-- done() prints one line, "BENCH_MIGRATION " and a JSON object: the counts and
-- the latency percentiles in microseconds (`wrk --latency` prints no p95).
-- "status" is wrk's "Non-2xx or 3xx responses" (status > 399).

local entries = {}
for line in (os.getenv("BENCH_MIGRATION_REQUESTS") or ""):gmatch("[^\n]+") do
  local method, path, body = line:match("^([^\t]+)\t([^\t]+)\t?(.*)$")
  if method == nil then
    error("bench_migration_mix.lua: bad request line: " .. line)
  end
  entries[#entries + 1] = { method = method, path = path, body = body ~= "" and body or nil }
end
if #entries == 0 then
  error("bench_migration_mix.lua: BENCH_MIGRATION_REQUESTS is empty")
end

local function headers_for(entry)
  -- wrk.format adds Host and Content-Length to the table it is given: a fresh one each.
  local headers = {}
  for name, value in pairs(wrk.headers) do
    headers[name] = value
  end
  if entry.body then
    headers["Content-Type"] = "application/json"
  end
  return headers
end

if #entries == 1 then
  local entry = entries[1]
  wrk.method, wrk.path, wrk.body = entry.method, entry.path, entry.body
  wrk.headers = headers_for(entry)
else
  local requests, count, turn = {}, 0, 0

  function init(args)
    for index, entry in ipairs(entries) do
      requests[index] = wrk.format(entry.method, entry.path, headers_for(entry), entry.body)
    end
    count = #requests
  end

  function request()
    turn = turn % count + 1
    return requests[turn]
  end
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_MIGRATION {"requests": %d, "duration_us": %d, "bytes": %d, "status": %d, '
      .. '"connect": %d, "read": %d, "write": %d, "timeout": %d, "p50_us": %.1f, '
      .. '"p95_us": %.1f, "p99_us": %.1f, "mean_us": %.1f, "max_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, errors.status,
    errors.connect, errors.read, errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.mean, latency.max
  ))
end
