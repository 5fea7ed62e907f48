-- expect: budget
-- comparing two 8 MiB strings is one instruction (caught by the time backstop)
local a = ("x"):rep(8 << 20)
local b = ("x"):rep(8 << 20)
while true do local _ = a == b end
