-- expect: error value out of range
-- utf8.char of a negative code point
return utf8.char(-1)
