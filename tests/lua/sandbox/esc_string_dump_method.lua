-- expect: error attempt to call a nil value (method 'dump')
-- dump through the string methods
return (""):dump()
