-- Append one update to its chat's FIFO, once per update_id (infra/chat_queue.py).
--
-- KEYS[1] seen    string, TTL   <p>:cq:seen:<botId>:<updateId>  "1" once the update was accepted (dedup)
-- KEYS[2] chat    list          <p>:cq:chat:<botId>:<chatId>    entries "<updateId>:<enqueuedMs>:<payload>", head first
-- KEYS[3] ready   zset          <p>:cq:ready                    member "<botId>:<chatId>", score = turn (from seq)
-- KEYS[4] leases  zset          <p>:cq:leases                   member "<botId>:<chatId>", score = lease deadline (ms)
-- KEYS[5] seq     string (int)  <p>:cq:seq                      turn counter for `ready` scores
-- KEYS[6] depth   string (int)  <p>:cq:depth:<botId>            updates queued for the bot
-- KEYS[7] heads   zset          <p>:cq:heads:<botId>            member chatId, score = enqueue ms of the chat's head
-- ARGV: member, chatId, updateId, payload, dedupTtlSeconds, traceparent ('' = none)
--       an entry's time field is "<enqueuedMs>" or "<enqueuedMs>;<traceparent>" (W3C, no ':')
-- Returns: 0 for a duplicate, else the chat's length after the append.
-- Time: Redis TIME (the server's clock), never the client's.
local member, chat_id, update_id, payload, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local trace = ARGV[6] or ''
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ttl) then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local length = redis.call('RPUSH', KEYS[2], update_id .. ':' .. now .. (trace ~= '' and (';' .. trace) or '') .. ':' .. payload)
redis.call('INCR', KEYS[6])
if length == 1 then
  redis.call('ZADD', KEYS[7], now, chat_id)
end
-- A leased chat is not ready: ack/release/lease recovery make it ready again if it has updates.
if not redis.call('ZSCORE', KEYS[4], member) then
  if not redis.call('ZSCORE', KEYS[3], member) then
    redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[5]), member)
  end
end
return length
