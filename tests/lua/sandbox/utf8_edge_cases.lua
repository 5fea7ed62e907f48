-- expect: ok
-- invalid sequences are reported, not crashes
assert(utf8.len("\xff\xfe") == nil)
assert(not pcall(utf8.codepoint, "\xff"))
assert(utf8.char(0x7FFFFFFF) ~= nil)
assert(utf8.offset("abc", 10) == nil)
assert(utf8.len("\u{10FFFF}\u{0}") == 2)
assert(not pcall(utf8.codepoint, "\xed\xa0\x80"))
assert(utf8.len(("\xe2\x82\xac"):rep(1000)) == 1000)
for p, c in utf8.codes("h\u{e9}llo") do assert(c > 0) end
assert(not pcall(function() for p, c in utf8.codes("\xff") do end end))
