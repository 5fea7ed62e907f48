-- expect: error table is read-only (cannot set 'insert')
-- patch the table library
function main()
  table.insert = nil
end
