-- expect: error undefined global 'os'
-- run a command
os.execute("id")
