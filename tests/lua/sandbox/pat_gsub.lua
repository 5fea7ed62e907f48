-- expect: refused pattern
-- gsub with two greedy captures
return ("a"):rep(20000):gsub("(a*)(a*)b", "")
