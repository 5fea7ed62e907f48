-- expect: error undefined global 'load'
-- load hand-made bytecode (string.dump is gone, so build the header by hand)
local header = "\27Lua\x54\x00\x19\x93\r\n\x1a\n\x04\x08\x08"
local f = load(header .. ("\0"):rep(64), "=x", "b")
return f()
