-- wrk script: asks for the paths of a table file (one a line, written by bench/site.py --zipf)
-- in the table's order, so every server gets the same Zipf-distributed sequence of requests.
--
--   wrk -t2 -c64 -d5s -s bench/paths.lua -H 'Host: site.localhost' http://127.0.0.1:PORT -- TABLE
--
-- Each wrk thread starts at its own place in the table. Headers given with -H go on every request.

local threads = 0

function setup(thread)
   thread:set("start", threads)
   threads = threads + 1
end

local requests, count, at

function init(args)
   local table_file = args[1]
   if table_file == nil then
      error("give the table file after --")
   end
   local formatted, order = {}, {}
   for path in io.lines(table_file) do
      local request = formatted[path]
      if request == nil then
         request = wrk.format("GET", path)
         formatted[path] = request
      end
      order[#order + 1] = request
   end
   requests, count = order, #order
   -- luacheck: globals start
   at = ((start or 0) * 7919) % count
end

function request()
   at = at % count + 1
   return requests[at]
end
