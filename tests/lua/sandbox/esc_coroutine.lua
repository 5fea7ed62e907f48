-- expect: error undefined global 'coroutine'
-- make a coroutine and yield to the host
local co = coroutine.wrap(function() coroutine.yield(1) end)
return co()
