-- expect: ok
-- pairs over _ENV and _G lists only the allowed names
local allowed = {}
for name in ("assert error ipairs next pairs pcall rawequal rawget rawlen select tonumber tostring type _VERSION rawset getmetatable setmetatable xpcall string table math utf8 _G main"):gmatch("%S+") do
  allowed[name] = true
end
function main()
  local n = 0
  for _, t in ipairs({ _ENV, _G }) do
    for k in pairs(t) do
      assert(allowed[k], "unexpected global " .. tostring(k))
      n = n + 1
    end
  end
  assert(n == 2 * 24, n)
  for _, name in ipairs({ "io", "os", "debug", "package", "load", "dofile", "require", "collectgarbage", "coroutine", "print" }) do
    assert(not pcall(function() return _ENV[name] end))
  end
end
