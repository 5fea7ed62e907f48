-- expect: budget
-- a gsub replacement function that loops
return ("abc"):gsub(".", function() while true do end end)
