-- expect: budget
-- one instruction, 10^15 iterations in C, no allocation
table.move({}, 1, 1e15, 2)
