-- wrk: POST /v1/models/fraud:predict, one instance, a different card of 10,000 each time
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
local channels = {"pos", "ecom", "atm"}
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, string.format(
    '{"instances":[{"card_id":"c-%d","amount":%d.5,"merchant_category":"grocery","channel":"%s","country":"DE"}]}',
    n % 10000, n % 300, channels[n % 3 + 1]))
end
