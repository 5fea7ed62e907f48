-- expect: ok
-- string.rep of the empty string 2^62 times (a C loop of 2^62 iterations unguarded)
assert(string.rep("", 1 << 62) == "")
assert((""):rep(math.maxinteger, "") == "")
