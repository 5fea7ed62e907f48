-- expect: error string slice too long
-- two million return values
return ("a"):rep(1 << 21):byte(1, -1)
