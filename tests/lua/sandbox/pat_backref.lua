-- expect: refused pattern
-- a back-reference after a repetition
return ("a"):rep(10000):find("(a*)%1b")
