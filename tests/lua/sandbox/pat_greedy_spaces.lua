-- expect: refused pattern
-- one greedy repetition before a missing literal: quadratic on 1 MiB
local s = (" "):rep(1 << 20)
return s:find("%s*x")
