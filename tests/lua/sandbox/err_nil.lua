-- expect: error error object is a nil value
-- error() with nothing
error()
