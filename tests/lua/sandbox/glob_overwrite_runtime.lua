-- expect: error assignment to global 'helper'
-- replace a function of the script at run time
function helper() return 1 end
function main()
  helper = function() return 2 end
end
