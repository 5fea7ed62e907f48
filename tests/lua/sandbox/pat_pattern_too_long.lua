-- expect: refused pattern
-- a pattern over 256 bytes
return ("x"):find(("x?"):rep(200))
