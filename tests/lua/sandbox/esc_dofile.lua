-- expect: error undefined global 'dofile'
-- run another file
dofile("/etc/passwd")
