-- Move one dead-lettered update back to the tail of its chat's FIFO (infra/chat_queue.py, docs/dlq.md).
--
-- KEYS[1] dlq     list          <p>:dlq:in:<botId>              "<json header>\n<payload>"; the entry leaves (LREM 1)
-- KEYS[2] chat    list          <p>:cq:chat:<botId>:<chatId>    entries "<updateId>:<enqueuedMs>:<payload>", head first
-- KEYS[3] ready   zset          <p>:cq:ready                    member "<botId>:<chatId>", score = turn (from seq)
-- KEYS[4] leases  zset          <p>:cq:leases                   member "<botId>:<chatId>", score = lease deadline (ms)
-- KEYS[5] seq     string (int)  <p>:cq:seq                      turn counter for `ready` scores
-- KEYS[6] depth   string (int)  <p>:cq:depth:<botId>            updates queued for the bot
-- KEYS[7] heads   zset          <p>:cq:heads:<botId>            member chatId, score = enqueue ms of the chat's head
-- ARGV: member, chatId, entry (the exact bytes of the DLQ entry: it is the entry's identity)
-- Returns: 0 when the entry is no longer in the DLQ (another client replayed or dropped it): nothing changed;
--          else the chat's length after the append.
-- The dedup key (<p>:cq:seen:<botId>:<updateId>) is neither checked nor set: the update was accepted once already.
-- The head's delivery count (<p>:cq:tries) is untouched: an empty chat has none, a non-empty one keeps its head's.
-- Time: Redis TIME (the new enqueue time), never the client's.
local member, chat_id, entry = ARGV[1], ARGV[2], ARGV[3]
local newline = string.find(entry, '\n', 1, true)
if not newline then
  return redis.error_reply('dead letter of ' .. member .. ' has no header')
end
local header = cjson.decode(string.sub(entry, 1, newline - 1))
if tostring(header.chatId) ~= chat_id then
  return redis.error_reply('dead letter of chat ' .. tostring(header.chatId) .. ' replayed into ' .. member)
end
if redis.call('LREM', KEYS[1], 1, entry) == 0 then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local length = redis.call('RPUSH', KEYS[2], tostring(header.updateId) .. ':' .. now .. ':' .. string.sub(entry, newline + 1))
redis.call('INCR', KEYS[6])
if length == 1 then
  redis.call('ZADD', KEYS[7], now, chat_id)
end
-- As enqueue: a leased chat is not made ready (its holder's head stays first; settling makes it ready again).
if not redis.call('ZSCORE', KEYS[4], member) then
  if not redis.call('ZSCORE', KEYS[3], member) then
    redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[5]), member)
  end
end
return length
