-- wrk script: POST the bytes of a file with a given Content-Type to the URL's path.
--
--   wrk -t1 -c16 -d4s --latency -s body.lua http://127.0.0.1:8000/v2/models/mnist-mlp/infer -- FILE CONTENT-TYPE
--
-- done() prints one line of JSON in the shape multipart.lua prints (images_per_request is 1).

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local f = assert(io.open(assert(args[1], "file to send"), "rb"))
   wrk.body = f:read("*a")
   f:close()
   wrk.method = "POST"
   wrk.headers["Content-Type"] = args[2] or "application/json"
   non2xx = 0
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   end
end

function done(summary, latency, requests)
   local bad = 0
   for _, t in ipairs(threads) do
      bad = bad + (t:get("non2xx") or 0)
   end
   local secs = summary.duration / 1e6
   local rps = summary.requests / secs
   local e = summary.errors
   local function ms(us) return string.format("%.3f", us / 1000) end
   io.write(string.format(
      '{"url_path":"%s","images_per_request":1,"requests":%d,"duration_s":%.3f,"requests_per_s":%.1f,' ..
      '"images_per_s":%.1f,"latency_ms":{"p50":%s,"p90":%s,"p99":%s,"max":%s,"mean":%s},"non2xx":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d}}\n',
      wrk.path, summary.requests, secs, rps, rps,
      ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(99)),
      ms(latency.max), ms(latency.mean), bad, e.connect, e.read, e.write, e.timeout, e.status))
end
