-- expect: ok
-- next() on the proxies sees nothing; pairs over string has no dump
assert(next(_ENV) == nil)
assert(next(_G) == nil)
assert(next(string) == nil)
local n = 0
for k in pairs(string) do
  assert(k ~= "dump")
  n = n + 1
end
assert(n > 10)
