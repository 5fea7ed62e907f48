-- expect: memory
-- string.pack with a 1 GiB fixed-size field
return string.pack("c1073741824", "")
