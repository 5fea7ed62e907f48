-- expect: error assignment to undefined global 'counter'
-- keep a counter in a global between requests
function main()
  counter = 1
end
