-- expect: ok
-- a keyword router: trim, lower, tokenize, score routes, pick the best
local ROUTES = {
  { name = "billing", words = { "invoice", "refund", "charge", "payment" } },
  { name = "travel", words = { "ubud", "bali", "temple", "beach", "flight" } },
  { name = "support", words = { "error", "crash", "help", "broken" } },
}

local function trim(s)
  return (s:match("^%s*(.-)%s*$"))
end

local function tokens(text)
  local out = {}
  for w in text:lower():gmatch("[%w_]+") do
    out[#out + 1] = w
  end
  return out
end

function route(text)
  local words = tokens(trim(text))
  local best, best_score = "main", 0
  for _, r in ipairs(ROUTES) do
    local score = 0
    for _, w in ipairs(words) do
      for _, k in ipairs(r.words) do
        if w == k then
          score = score + 1
        end
      end
    end
    if score > best_score then
      best, best_score = r.name, score
    end
  end
  return best, best_score
end

function main()
  assert(route("  I need a REFUND for this invoice  ") == "billing")
  assert(route("Which temple in Ubud should I visit?") == "travel")
  assert(route("hello there") == "main")
  local r, s = route(("help me, the app is broken! "):rep(50))
  assert(r == "support" and s == 100, s)
  return string.format("%s:%d", r, s)
end
