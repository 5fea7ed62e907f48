-- expect: error undefined global 'collectgarbage'
-- stop the collector
collectgarbage("stop")
