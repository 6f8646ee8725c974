-- A chat became ready: push a wake token, and say whether a lingering executor will take it
-- (workers/execute.py ChatReady.notify; an executor registers with linger.lua before it waits).
--
-- KEYS[1] wake       list (capped)  <p>:rt:wake        one token per wake-up
-- KEYS[2] lingering  zset           <p>:rt:lingering   member "<consumer>:<n>" of a waiting drain, score = its deadline (ms)
-- ARGV: max tokens, margin ms (a drain within this of its deadline does not count)
-- Returns: 1 when more drains are waiting than tokens were already waiting (ours will be taken),
--          0 when the caller must send an execute message.
-- Time: Redis TIME. An answer of 1 that turns out wrong (the drain gave up in between) costs a
-- delay, never an update: the chat stays ready for the next claim and the pump.
local max, margin = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now + margin)
local idle = redis.call('ZCARD', KEYS[2])
local waiting = redis.call('LLEN', KEYS[1])
redis.call('LPUSH', KEYS[1], '1')
redis.call('LTRIM', KEYS[1], 0, max - 1)
if idle > waiting then
  return 1
end
return 0
