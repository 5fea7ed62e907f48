-- expect: error invalid conversion
-- a huge field width
return string.format("%999999999d", 1)
