-- wrk script for bench/ingest.sh: POST Segment calls with a fresh messageId on every call.
-- 5,000 customers (user id, email and phone of their own) come back in turn.
-- Usage: wrk ... -s bench/ingest.lua URL -- <single|batch|paced> <write key> [events per batch]
-- "paced": single calls, each connection waiting 10 ms after every answer (with -c20, at most
-- about 2,000 requests/s); wrk has no fixed-rate mode and wrk2 is not in Debian.

local mode, events = "single", 100
local counter = 0
local prefix = ""

local function b64(data)
  local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end

local function call(id)
  return '{"type":"track","event":"Order Completed","messageId":"' .. id .. '",'
    .. '"userId":"user-' .. (counter % 5000) .. '",'
    .. '"context":{"ip":"203.0.113.9","userAgent":"Mozilla/5.0 (X11; Linux x86_64; rv:140.0) '
    .. 'Gecko/20100101 Firefox/140.0","page":{"url":"https://shop.example/done?epik=dj0yJnU9abc"},'
    .. '"traits":{"email":"someone' .. (counter % 5000) .. '@example.com","phone":"+1 650 555 '
    .. string.format("%04d", counter % 5000) .. '"}},'
    .. '"properties":{"order_id":"' .. id .. '","revenue":72.39,"currency":"USD",'
    .. '"products":[{"product_id":"sku-1","price":30,"quantity":1},'
    .. '{"product_id":"sku-2","price":42.39,"quantity":1}]}}'
end

function setup(thread)
  thread:set("seed", math.random(1, 2 ^ 30))
end

function init(args)
  mode = args[1] or "single"
  events = tonumber(args[3] or "100")
  math.randomseed(os.time() + (seed or 0))
  prefix = string.format("%x-%x-", os.time(), math.random(1, 2 ^ 30))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Basic " .. b64((args[2] or "bench-key") .. ":")
end

function request()
  if mode == "batch" then
    local parts = {}
    for i = 1, events do
      counter = counter + 1
      parts[i] = call(prefix .. counter)
    end
    return wrk.format(nil, nil, nil, '{"batch":[' .. table.concat(parts, ",") .. ']}')
  end
  counter = counter + 1
  return wrk.format(nil, nil, nil, call(prefix .. counter))
end

function delay()
  if mode == "paced" then
    return 10
  end
  return 0
end
