-- expect: ok
-- measure and cut text by characters, not bytes (Indonesian and Balinese names)
local function cut(s, max)
  if utf8.len(s) <= max then
    return s
  end
  return s:sub(1, utf8.offset(s, max + 1) - 1) .. "…"
end

function main()
  local s = "Selamat pagi, Pak Wayan — terima kasih! ☕"
  assert(utf8.len(s) == 41 and #s == 45)
  assert(cut(s, 13) == "Selamat pagi,…")
  local upper = 0
  for _, c in utf8.codes(s) do
    if c >= 65 and c <= 90 then
      upper = upper + 1
    end
  end
  assert(upper == 3)
  assert(utf8.char(0x1F334) == "🌴")
  assert(#utf8.charpattern > 0)
  local count = 0
  for _ in s:gmatch(utf8.charpattern) do
    count = count + 1
  end
  assert(count == 41)
end
