-- expect: memory
-- catch a table bomb and keep allocating
function main()
  local ok = pcall(function()
    local t = {}
    for i = 1, 1e9 do t[i] = {} end
  end)
  assert(not ok)
  local more = {}
  for i = 1, 10 do more[i] = i end
  return more
end
