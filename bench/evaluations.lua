-- AuthZEN batch evaluation: 100 decisions per request.
local subjects = { "rep_east", "rep_west", "mgr_na", "agent", "cs_support", "vp_sales" }
local n = 0
request = function()
  n = n + 1
  local items = {}
  for i = 1, 100 do
    local r = ((n * 100 + i) % 400) + 1
    items[#items + 1] = string.format('{"subject":{"type":"user","id":"%s"},"resource":{"type":"account","id":"acc-%04d"}}', subjects[((n + i) % #subjects) + 1], r)
  end
  local body = '{"action":{"name":"read"},"evaluations":[' .. table.concat(items, ",") .. ']}'
  return wrk.format("POST", "/access/v1/evaluations", nil, body)
end
