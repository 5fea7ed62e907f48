-- expect: ok
-- state between requests lives in upvalues (by design), not in globals
local seen = {}
local calls = 0

function remember(user)
  calls = calls + 1
  seen[user] = (seen[user] or 0) + 1
  return seen[user]
end

MAX_USERS = 1000 -- a constant defined at load time is fine

function main()
  assert(remember("wayan") == 1)
  assert(remember("wayan") == 2)
  assert(remember("made") == 1)
  assert(calls == 3 and MAX_USERS == 1000)
  local counter = (function()
    local n = 0
    return function()
      n = n + 1
      return n
    end
  end)()
  counter()
  assert(counter() == 2)
end
