-- expect: refused pattern
-- %b over deeply nested, never closed brackets
return ("("):rep(100000):find("%b()x")
