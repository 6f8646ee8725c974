-- Renew or release a chat's lease, keeping its head (infra/chat_queue.py).
--
-- KEYS[1] lease   string, PX    <p>:cq:lease:<botId>:<chatId>   "<token>:<consumerId>" while leased
-- KEYS[2] leases  zset          <p>:cq:leases                   member "<botId>:<chatId>", score = lease deadline (ms)
-- KEYS[3] ready   zset          <p>:cq:ready                    member "<botId>:<chatId>", score = turn
-- KEYS[4] chat    list          <p>:cq:chat:<botId>:<chatId>    entries "<updateId>:<enqueuedMs>:<payload>"
-- KEYS[5] tries   hash          <p>:cq:tries                    field member -> deliveries of the current head
-- KEYS[6] seq     string (int)  <p>:cq:seq                      turn counter for `ready` scores
-- ARGV: member, token, leaseMs (> 0: renew for that long; 0: release)
-- Returns: 1, or 0 when the caller's lease is gone: nothing changed.
-- Time: Redis TIME (the new deadline).
local member, token, lease_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
local lease = redis.call('GET', KEYS[1])
if not lease or string.match(lease, '^(%d+):') ~= token then
  return 0
end
if lease_ms > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('PEXPIRE', KEYS[1], lease_ms)
  redis.call('ZADD', KEYS[2], now + lease_ms, member)
  return 1
end
-- Release: the delivery did not happen (shutdown), so it does not count towards dead-lettering.
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], member)
if redis.call('HINCRBY', KEYS[5], member, -1) <= 0 then
  redis.call('HDEL', KEYS[5], member)
end
if redis.call('LLEN', KEYS[4]) > 0 then
  redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[6]), member)
end
return 1
