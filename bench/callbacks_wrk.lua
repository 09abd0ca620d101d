-- wrk script of bench/callbacks_wrk.py: pre-signed Twilio status callbacks, each sent once.
--
-- wrk -s bench/callbacks_wrk.lua URL -- PREFIX PAUSE_MS: thread n reads PREFIX.n, one request a line,
-- "SIGNATURE<TAB>BODY", and sends its lines in order (a message's callbacks are all in the
-- same thread's file, its `sent` before its `delivered`). A thread that reaches the end starts
-- again from the top and counts a wrap: the harness writes enough lines that none should.
-- Each connection pauses PAUSE_MS before each of its requests (0: none), which caps the rate
-- near connections * 1000 / PAUSE_MS a second.
-- done() prints one JSON line, prefixed "wrk-result ", for the harness to read.

local threads = {}

function setup(thread)
   thread:set("index", #threads)
   table.insert(threads, thread)
end

pause = 0

function init(args)
   requests, position, wraps, pause = {}, 0, 0, tonumber(args[2])
   local headers = {}
   for line in io.lines(args[1] .. "." .. index) do
      local signature, body = line:match("^([^\t]+)\t(.*)$")
      headers["X-Twilio-Signature"] = signature
      headers["Content-Type"] = "application/x-www-form-urlencoded"
      table.insert(requests, wrk.format("POST", nil, headers, body))
   end
end

function delay()
   return pause
end

function request()
   position = position + 1
   if position > #requests then
      position, wraps = 1, wraps + 1
   end
   return requests[position]
end

function done(summary, latency, requests)
   local wrapped = 0
   for _, thread in ipairs(threads) do
      wrapped = wrapped + thread:get("wraps")
   end
   local e = summary.errors
   io.write(string.format(
      'wrk-result {"requests": %d, "duration_us": %d, "bytes": %d, "wraps": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
      summary.requests, summary.duration, summary.bytes, wrapped,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
