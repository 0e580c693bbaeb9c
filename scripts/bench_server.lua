-- wrk script of scripts/bench_server.py: POST JSON bodies to the URL's path.
--
--   BENCH_BODIES=bodies.jsonl BENCH_KEY=secret wrk -t2 -c64 -d10s --latency \
--       -s scripts/bench_server.lua http://127.0.0.1:8080/v1/models/breast-cancer/predict
--
-- BENCH_BODIES: a file of request bodies, one a line; with one body, wrk sends a fixed request,
-- with several each thread cycles through them (from its own starting point).
-- BENCH_KEY: when set and not empty, sent as "Authorization: Bearer <key>".
-- At the end it prints one line "BENCH_RESULT {json}": requests, duration_us, p50_us, p90_us,
-- p99_us and the error counts, which the Python script reads.

local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do
  if #line > 0 then
    bodies[#bodies + 1] = line
  end
end
assert(#bodies > 0, "BENCH_BODIES has no body")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("BENCH_KEY")
if key and #key > 0 then
  wrk.headers["Authorization"] = "Bearer " .. key
end

if #bodies == 1 then
  wrk.body = bodies[1]
else
  local requests = {}
  local next_index = 0
  local threads = 0

  -- Runs in the main state once per thread: gives each thread its own starting body.
  function setup(thread)
    thread:set("thread_number", threads)
    threads = threads + 1
  end

  -- Runs in each thread after wrk has set the Host header.
  function init(args)
    for i, body in ipairs(bodies) do
      requests[i] = wrk.format(nil, nil, nil, body)
    end
    next_index = ((thread_number or 0) * 37) % #requests
  end

  function request()
    next_index = next_index % #requests + 1
    return requests[next_index]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %.1f, "p90_us": %.1f, '
      .. '"p99_us": %.1f, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))
end
