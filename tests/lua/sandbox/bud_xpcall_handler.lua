-- expect: budget
-- a message handler that loops, called for the budget error (hooks are off there)
xpcall(function() while true do end end, function() while true do end end)
