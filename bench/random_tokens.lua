-- wrk script: every request carries a bearer token never seen before
-- (FIXED_TOKEN=1: the same bad token every time), as a token guesser sends.
local fixed = os.getenv("FIXED_TOKEN") == "1"
local path = os.getenv("FLOOD_PATH") or "/requests?limit=1"

function setup(thread)
  thread:set("seed", math.random(1, 2 ^ 30))
end

function init(args)
  math.randomseed(seed or os.time())
end

function request()
  local token = "bad-token-fixed"
  if not fixed then
    local hex = {}
    for i = 1, 32 do hex[i] = string.format("%x", math.random(0, 15)) end
    token = "bad-" .. table.concat(hex)
  end
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token })
end

local statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
