-- expect: error string slice too long
-- utf8.codepoint over two million characters
return utf8.codepoint(("a"):rep(1 << 21), 1, -1)
