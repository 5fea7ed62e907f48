-- expect: error undefined global 'os'
-- exit the daemon from a request
function main()
  os.exit(0, true)
end
