-- expect: error cannot redefine builtin global 'tostring'
-- shadow a builtin for later requests
tostring = function() return "x" end
