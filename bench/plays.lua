-- wrk script for bench/cluster.sh: GET /v1/streams/{id}/play over the stream ids in the file
-- named by $IDS (one a line), in turn, and a count of the answers that were not 200 (printed
-- at the end).
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  ids = {}
  for line in io.lines(os.getenv("IDS")) do
    table.insert(ids, line)
  end
  n = tid
  not_ok = 0
end

function request()
  n = n + 1
  local id = ids[(n % #ids) + 1]
  return wrk.format("GET", "/v1/streams/" .. id .. "/play?protocol=hls&region=tw")
end

function response(status, headers, body)
  if status ~= 200 then
    not_ok = not_ok + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + t:get("not_ok")
  end
  io.write(string.format("not_ok %d\n", total))
end
