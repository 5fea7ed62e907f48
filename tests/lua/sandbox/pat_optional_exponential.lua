-- expect: refused pattern
-- the classic exponential a?^n a^n
local n = 25
return ("a"):rep(n):match("^" .. ("a?"):rep(n) .. ("a"):rep(n) .. "$")
