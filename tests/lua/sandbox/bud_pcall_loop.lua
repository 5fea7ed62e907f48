-- expect: budget
-- pcall cannot swallow the budget error
while true do
  pcall(function() while true do end end)
end
