-- expect: ok
-- score candidates with math, sort them, keep the top three
local function score(c)
  local s = c.quality * 0.7 + (1 - c.cost / 100) * 0.3
  return math.floor(s * 1000 + 0.5) / 1000
end

function main()
  local cands = {}
  for i = 1, 200 do
    cands[#cands + 1] = {
      name = "m" .. i,
      quality = (i * 37 % 100) / 100,
      cost = i % 50 + 1,
    }
  end
  for _, c in ipairs(cands) do
    c.score = score(c)
  end
  table.sort(cands, function(a, b)
    if a.score ~= b.score then
      return a.score > b.score
    end
    return a.name < b.name
  end)
  local top = table.move(cands, 1, 3, 1, {})
  assert(#top == 3 and top[1].score >= top[3].score)
  table.insert(top, 1, { name = "pinned", score = 1 })
  assert(table.remove(top).name ~= "pinned")
  local names = {}
  for i, c in ipairs(top) do
    names[i] = c.name
  end
  assert(table.concat(names, ","):find("^pinned,"))
  assert(math.max(table.unpack({ 3, 9, 4 })) == 9)
  assert(math.type(7 // 2) == "integer" and 7 / 2 == 3.5)
  assert(select("#", table.unpack({ 1, 2, 3 })) == 3)
  local r = math.random(1, 6)
  assert(r >= 1 and r <= 6)
end
