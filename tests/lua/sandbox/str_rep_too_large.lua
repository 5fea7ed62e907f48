-- expect: error resulting string too large
-- a string longer than size_t
return string.rep("x", 1 << 62)
