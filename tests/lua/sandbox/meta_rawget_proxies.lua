-- expect: ok
-- rawget on the proxies shows nothing behind them
assert(rawget(_ENV, "string") == nil)
assert(rawget(_G, "io") == nil)
assert(rawget(string, "find") == nil)
assert(rawequal(_G, _ENV))
assert(string.find ~= nil)
