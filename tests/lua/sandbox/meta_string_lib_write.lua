-- expect: error string is read-only (cannot set 'upper')
-- patch the string library for later requests
string.upper = function() return "pwned" end
