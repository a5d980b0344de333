-- wrk script for bench/webhook.py: replays pre-signed POST bodies, each thread its own slice, never repeating one.
-- usage: wrk -s post.lua URL -- REQUESTS_FILE THREADS PATH
-- REQUESTS_FILE has one request per line: "<X-Twilio-Signature>\t<form body>".

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads, target = args[1], tonumber(args[2]), args[3]
  requests, index, used_up = {}, 0, 0
  local n = 0
  for line in io.lines(path) do
    if n % nthreads == id then
      local signature, body = line:match("^([^\t]*)\t(.*)$")
      local headers = {["Content-Type"] = "application/x-www-form-urlencoded", ["X-Twilio-Signature"] = signature}
      requests[#requests + 1] = wrk.format("POST", target, headers, body)
    end
    n = n + 1
  end
end

function request()
  index = index + 1
  if index > #requests then
    index, used_up = 1, used_up + 1
  end
  return requests[index]
end

function done(summary, latency, requests)
  local wrapped = 0
  for _, thread in ipairs(threads) do
    wrapped = wrapped + thread:get("used_up")
  end
  io.write(string.format(
    'BENCH {"requests": %d, "seconds": %.3f, "p50_us": %d, "p99_us": %d, "non2xx": %d, "errors": %d, "wrapped": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    wrapped))
end
