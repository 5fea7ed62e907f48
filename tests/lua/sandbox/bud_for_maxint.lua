-- expect: budget
-- a numeric for to maxinteger
function main()
  for i = 1, math.maxinteger do end
end
