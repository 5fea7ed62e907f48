-- expect: error attempt to call a nil value (field 'dump')
-- dump a function to bytecode
return string.dump(function() return 1 end)
