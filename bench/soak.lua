-- wrk script for `make soak`: every request carries one of these trace-header sets, with
-- fresh random ids, so the soak walks the filter's paths (valid, invalid, conflicting,
-- oversized) rather than one cached case.
local hex = "0123456789abcdef"

local function id(n)
  local t = {}
  for i = 1, n do
    local k = math.random(1, 16)
    t[i] = hex:sub(k, k)
  end
  return table.concat(t)
end

local function tracestate(members, width)
  local t = {}
  for i = 1, members do
    t[i] = string.format("k%02d=%s", i, string.rep("v", width))
  end
  return table.concat(t, ",")
end

local sets = {
  function() return {} end,
  function() return { ["traceparent"] = "00-" .. id(32) .. "-" .. id(16) .. "-01" } end,
  function()
    return { ["traceparent"] = "00-" .. id(32) .. "-" .. id(16) .. "-01", ["tracestate"] = tracestate(32, 8) }
  end,
  function() return { ["b3"] = id(32) .. "-" .. id(16) .. "-1" } end,
  function()
    return { ["x-b3-traceid"] = id(16), ["x-b3-spanid"] = id(16), ["x-b3-sampled"] = "0" }
  end,
  function() return { ["uber-trace-id"] = id(32) .. ":" .. id(16) .. ":0:1" } end,
  function()
    -- Formats that disagree.
    return { ["traceparent"] = "00-" .. id(32) .. "-" .. id(16) .. "-01", ["b3"] = id(32) .. "-" .. id(16) .. "-0" }
  end,
  function() return { ["traceparent"] = "00-" .. string.upper(id(32)) .. "-" .. id(16) .. "-01" } end,
  function() return { ["traceparent"] = "00-" .. string.rep("0", 32) .. "-" .. id(16) .. "-01" } end,
  function() return { ["tracestate"] = tracestate(40, 30), ["traceparent"] = "00-" .. id(32) .. "-" .. id(16) .. "-01" } end,
  function() return { ["b3"] = "garbage-" .. id(7) } end,
}

local n = 0

request = function()
  n = n + 1
  local headers = sets[(n % #sets) + 1]()
  return wrk.format("GET", "/soak", headers)
end
