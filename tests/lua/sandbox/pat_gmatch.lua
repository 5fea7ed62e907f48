-- expect: refused pattern
-- gmatch is guarded when the iterator is made
for w in ("a"):rep(20000):gmatch("a-a-b") do end
