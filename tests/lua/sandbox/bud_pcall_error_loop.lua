-- expect: budget
-- cheap errors caught in a loop
for i = 1, math.huge do pcall(error, "x") end
