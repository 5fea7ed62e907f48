-- expect: error undefined global 'loadstring'
-- the 5.1 name
return loadstring("return 1")()
