-- A drain found no ready chat and is about to wait for a wake token (workers/executor.py).
--
-- KEYS[1] lingering  zset  <p>:rt:lingering  member "<consumer>:<n>", score = deadline (ms, Redis clock)
-- ARGV: member, wait ms
-- The drain removes its member when the wait ends; one that dies leaves it to expire at the deadline.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
