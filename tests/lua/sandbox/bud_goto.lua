-- expect: budget
-- a goto loop
::top::
goto top
