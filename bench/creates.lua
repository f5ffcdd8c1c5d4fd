-- wrk script for bench/creates.sh: POST /v1/streams, a new anchor id on every request, and a
-- count of the answers that were not 201 Created (printed at the end).
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  n = 0
  refused = 0
end

function request()
  n = n + 1
  local body = string.format('{"anchor_id":"bench-%d-%d","region":"tw"}', tid, n)
  return wrk.format("POST", "/v1/streams", { ["Content-Type"] = "application/json" }, body)
end

function response(status, headers, body)
  if status ~= 201 then
    refused = refused + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + t:get("refused")
  end
  io.write(string.format("not_created %d\n", total))
end
