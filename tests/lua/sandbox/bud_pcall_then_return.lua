-- expect: budget
-- catch the budget error and return normally
function main()
  pcall(function() while true do end end)
  return "survived"
end
