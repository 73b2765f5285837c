-- wrk script for benchmarks/bench_api.py: POST /api/v1/assess with a rotating set of
-- patient documents (one JSON document per line of the file given as the first argument).
-- The second argument is the mean pause in milliseconds a client (connection) takes between
-- receiving a response and sending its next request (0: back to back). Pauses are drawn
-- uniformly from [0, 2 * mean] so that 32 clients do not move in lockstep.
local bodies = {}
local pause = 0
local counter = 0

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
  pause = tonumber(args[2] or "0")
  counter = math.random(1, #bodies)
  math.randomseed(os.time() + counter)
end

function request()
  counter = counter + 1
  local body = bodies[(counter % #bodies) + 1]
  return wrk.format("POST", wrk.path, {["Content-Type"] = "application/json"}, body)
end

function delay()
  if pause <= 0 then return 0 end
  return math.random(0, 2 * pause)
end
