-- expect: error undefined global 'package'
-- find os in package.loaded
return package.loaded.os.exit()
