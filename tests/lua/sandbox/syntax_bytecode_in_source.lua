-- expect: syntax unexpected symbol
-- a chunk that smuggles a binary header after the comment line
local s = 1
Lua
