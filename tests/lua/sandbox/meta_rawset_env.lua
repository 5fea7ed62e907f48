-- expect: error read-only
-- keep state in the environment with rawset
function main()
  rawset(_ENV, "counter", 1)
end
