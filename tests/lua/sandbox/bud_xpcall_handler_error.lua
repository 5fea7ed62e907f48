-- expect: budget
-- a message handler that loops on an ordinary error
xpcall(error, function() while true do end end)
