-- expect: refused pattern
-- a subject over 1 MiB, even for a plain find
return ("x"):rep((1 << 20) + 1):find("x", 1, true)
