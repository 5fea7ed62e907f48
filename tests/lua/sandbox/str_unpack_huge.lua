-- expect: budget
-- table.unpack of 10^8 values
return table.unpack({}, 1, 1e8)
