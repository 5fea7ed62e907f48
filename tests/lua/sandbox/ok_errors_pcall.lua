-- expect: ok
-- errors as values: pcall, error with tables and levels, xpcall handlers
local function check(v)
  if type(v) ~= "number" then
    error({ code = "EINVAL", msg = "not a number: " .. tostring(v) })
  end
  return v * 2
end

function main()
  local ok, e = pcall(check, "x")
  assert(not ok and e.code == "EINVAL")
  ok, e = pcall(error, "plain", 0)
  assert(not ok and e == "plain")
  ok, e = pcall(function() local t = nil; return t.x end)
  assert(not ok and e:find("attempt to index a nil value"))
  local seen
  ok, e = xpcall(function() error("deep") end, function(m)
    seen = m
    return "handled: " .. m
  end)
  assert(not ok and e:find("^handled: ") and seen:find("deep"))
  assert(select(2, pcall(check, 21)) == 42)
  local ok2, e2 = pcall(function() return ("a"):rep(3000):find("a-a-b") end)
  assert(not ok2 and e2:find("refused pattern"))
end
