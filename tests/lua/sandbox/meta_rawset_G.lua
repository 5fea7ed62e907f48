-- expect: error read-only
-- keep state in _G with rawset
rawset(_G, "cache", {})
