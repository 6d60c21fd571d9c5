-- One access check per request, rotating over records and privileges.
-- STRATA_DELAY_MS (optional) paces each connection for a fixed offered load.
local records = {}
for i = 1, 400 do records[#records + 1] = string.format("acc-%04d", i) end
local privileges = { "read", "write", "delete", "share" }
local n = 0
local delay_ms = tonumber(os.getenv("STRATA_DELAY_MS") or "0")

request = function()
  n = n + 1
  local body = string.format('{"privilege":"%s","record":"%s"}', privileges[(n % #privileges) + 1], records[(n % #records) + 1])
  return wrk.format("POST", "/api/v1/orgs/demo/check", nil, body)
end

if delay_ms > 0 then
  delay = function() return delay_ms end
end
