-- expect: budget
-- __close that loops while an error unwinds
do
  local x <close> = setmetatable({}, { __close = function() while true do end end })
  error("boom")
end
