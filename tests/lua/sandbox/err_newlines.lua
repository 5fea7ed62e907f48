-- expect: error first second
-- a message that would split a log record
error("first\nsecond\r\nthird")
