-- expect: error undefined global 'debug'
-- remove the budget hook
debug.sethook()
while true do end
