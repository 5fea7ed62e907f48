-- expect: error undefined global 'print'
-- write to the daemon's stdout
print("hello from a policy")
