-- expect: ok
-- parse "key = value" lines and comma lists, the way a policy reads options
local function parse(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    local k, v = line:match("^%s*([%w_]+)%s*=%s*(.-)%s*$")
    if k then
      local list = {}
      for item in v:gmatch("[^,]+") do
        list[#list + 1] = item:match("^%s*(.-)%s*$")
      end
      out[k] = #list > 1 and list or v
    end
  end
  return out
end

function main()
  local opts = parse([[
    model = claude
    fallback = llama, mistral ,  gemma
    # a comment line is ignored
    temperature = 0.7
  ]])
  assert(opts.model == "claude")
  assert(#opts.fallback == 3 and opts.fallback[2] == "mistral")
  assert(tonumber(opts.temperature) == 0.7)
  local n = 0
  for d in ("call 555-1234 or 555-9876 before 17:00"):gmatch("%d+") do
    n = n + 1
  end
  assert(n == 6)
  assert(("a,b;c d"):gsub("[,; ]", "|") == "a|b|c|d")
  assert(("2026-11-22"):match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$") == "2026")
  assert(("The Quick fox"):find("%f[%a]%a+", 5) == 5)
end
