-- expect: refused pattern
-- frontier patterns chained with lazy words
return ("a b "):rep(50000):find(("%f[%w]%w-"):rep(8) .. "x")
