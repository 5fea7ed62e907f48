-- expect: error read-only
-- patch the string library with rawset
rawset(string, "find", function() return 1 end)
