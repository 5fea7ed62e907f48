-- expect: memory
-- a separator bomb
return #string.rep("x", 1 << 20, ("y"):rep(1000))
