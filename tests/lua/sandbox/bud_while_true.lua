-- expect: budget
-- the plain endless loop
while true do end
