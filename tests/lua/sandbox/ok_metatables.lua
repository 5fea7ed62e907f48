-- expect: ok
-- a small class with metatables, __index, __tostring, __eq, __lt, __close
local Route = {}
Route.__index = Route
Route.__tostring = function(r)
  return "Route(" .. r.name .. ")"
end
Route.__eq = function(a, b)
  return a.name == b.name
end
Route.__lt = function(a, b)
  return a.weight < b.weight
end

function Route.new(name, weight)
  return setmetatable({ name = name, weight = weight }, Route)
end

function Route:describe()
  return string.format("%s weighs %d", self.name, self.weight)
end

function main()
  local a, b = Route.new("fast", 1), Route.new("slow", 5)
  assert(tostring(a) == "Route(fast)")
  assert(a ~= b and a == Route.new("fast", 9))
  assert(a < b)
  assert(b:describe() == "slow weighs 5")
  assert(getmetatable(a) == Route)
  local closed = false
  do
    local guard <close> = setmetatable({}, {
      __close = function()
        closed = true
      end,
    })
  end
  assert(closed)
  local weak = setmetatable({}, { __mode = "k" })
  weak[{}] = true
  local defaults = setmetatable({}, { __index = function(_, k) return k .. "?" end })
  assert(defaults.model == "model?")
end
