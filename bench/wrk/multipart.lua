-- wrk script: POST a multipart/form-data body with N file parts named "image" to the URL's path.
--
--   wrk -t2 -c16 -d10s --latency -s multipart.lua http://127.0.0.1:8000/predict [-- N [PNG]]
--
-- N (images per request, default 1) and PNG (default: digit.png next to this script) come from the wrk
-- arguments after "--", or else from the environment variables WRK_IMAGES and WRK_IMAGE.
-- done() prints one line of JSON (after wrk's own report):
--   {"url_path", "images_per_request", "requests", "duration_s", "requests_per_s", "images_per_s",
--    "latency_ms": {"p50","p90","p99","max","mean"}, "non2xx", "errors": {"connect","read","write","timeout","status"}}
-- "non2xx" counts every response outside 200..299 (counted in response()); wrk's own "status" error counts >= 400.

local function script_dir()
   local src = debug.getinfo(1, "S").source
   if src:sub(1, 1) == "@" then
      return src:sub(2):match("^(.*)/[^/]*$") or "."
   end
   return "."
end

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local n = args[1] or os.getenv("WRK_IMAGES") or "1"
   images = tonumber(n)
   if not images or images < 1 or images % 1 ~= 0 then
      error("images per request must be a positive integer, got " .. tostring(n))
   end
   local path = args[2] or os.getenv("WRK_IMAGE") or (script_dir() .. "/digit.png")
   local f = assert(io.open(path, "rb"))
   local png = f:read("*a")
   f:close()
   local boundary = "----wrkmultipart7d9f3c1a5e2b48"
   local part = "--" .. boundary .. "\r\n" ..
      'Content-Disposition: form-data; name="image"; filename="digit.png"\r\n' ..
      "Content-Type: image/png\r\n\r\n" .. png .. "\r\n"
   wrk.method = "POST"
   wrk.body = string.rep(part, images) .. "--" .. boundary .. "--\r\n"
   wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
   non2xx = 0
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   end
end

function done(summary, latency, requests)
   local n, bad, path = 1, 0, wrk.path
   for _, t in ipairs(threads) do
      n = t:get("images") or n
      bad = bad + (t:get("non2xx") or 0)
   end
   local secs = summary.duration / 1e6
   local rps = summary.requests / secs
   local e = summary.errors
   local function ms(us) return string.format("%.3f", us / 1000) end
   io.write(string.format(
      '{"url_path":"%s","images_per_request":%d,"requests":%d,"duration_s":%.3f,"requests_per_s":%.1f,' ..
      '"images_per_s":%.1f,"latency_ms":{"p50":%s,"p90":%s,"p99":%s,"max":%s,"mean":%s},"non2xx":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d}}\n',
      path, n, summary.requests, secs, rps, rps * n,
      ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(99)),
      ms(latency.max), ms(latency.mean), bad, e.connect, e.read, e.write, e.timeout, e.status))
end
