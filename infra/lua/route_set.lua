-- Replace a bot's runtime route only with a newer version (infra/routing.py, docs/rollouts.md).
--
-- KEYS[1] route  string  <p>:route:<botId>   JSON {"v": version, ...}
-- ARGV[1] version (bots.route_version), ARGV[2] the route JSON
-- Returns 1 if stored, 0 if the stored version is the same or newer (a late writer changes nothing).
local current = redis.call('GET', KEYS[1])
if current then
  local v = tonumber(string.match(current, '"v":(%d+)'))
  if v and v >= tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
