-- Remove a leased chat's head (ack, or dead-letter with a reason) and end the lease (infra/chat_queue.py).
--
-- KEYS[1] lease   string, PX    <p>:cq:lease:<botId>:<chatId>   "<token>:<consumerId>" while leased
-- KEYS[2] leases  zset          <p>:cq:leases                   member "<botId>:<chatId>", score = lease deadline (ms)
-- KEYS[3] ready   zset          <p>:cq:ready                    member "<botId>:<chatId>", score = turn
-- KEYS[4] chat    list          <p>:cq:chat:<botId>:<chatId>    entries "<updateId>:<enqueuedMs>:<payload>"
-- KEYS[5] tries   hash          <p>:cq:tries                    field member -> deliveries of the current head
-- KEYS[6] seq     string (int)  <p>:cq:seq                      turn counter for `ready` scores
-- KEYS[7] depth   string (int)  <p>:cq:depth:<botId>            updates queued for the bot
-- KEYS[8] heads   zset          <p>:cq:heads:<botId>            member chatId, score = enqueue ms of the head
-- KEYS[9] dlq     list          <p>:dlq:in:<botId>              "<json header>\n<payload>"; only written with a reason
-- KEYS[10…]       any           keys the caller is done with once the head is settled (the update's
--                               committed effects), deleted with it; untouched when the lease is gone
-- ARGV: member, chatId, token, updateId, reason ('' = ack)
-- Returns: 1, or 0 when the caller's lease is gone (expired, or the chat leased again): nothing changed.
-- Time: Redis TIME (the dead letter's `at`).
local member, chat_id, token, update_id, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = redis.call('GET', KEYS[1])
if not lease or string.match(lease, '^(%d+):') ~= token then
  return 0
end
local head = redis.call('LINDEX', KEYS[4], 0)
if not head or string.match(head, '^([^:]+):') ~= update_id then
  return redis.error_reply('chat queue corrupt: ' .. member .. ' head is not update ' .. update_id)
end
redis.call('LPOP', KEYS[4])
if reason ~= '' then
  local header = cjson.encode({
    chatId = chat_id, updateId = update_id, reason = reason, at = now,
    deliveries = tonumber(redis.call('HGET', KEYS[5], member) or '0'),
  })
  redis.call('RPUSH', KEYS[9], header .. '\n' .. string.sub(head, #string.match(head, '^[^:]+:[^:]+:') + 1))
end
for i = 10, #KEYS do
  redis.call('DEL', KEYS[i])
end
redis.call('HDEL', KEYS[5], member)
redis.call('DECR', KEYS[7])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], member)
local next_head = redis.call('LINDEX', KEYS[4], 0)
if next_head then
  redis.call('ZADD', KEYS[8], tonumber(string.match(next_head, '^[^:]+:(%d+)')), chat_id)
  -- Round robin: the chat goes to the back of the line, behind every chat that became ready meanwhile.
  redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[6]), member)
else
  redis.call('ZREM', KEYS[8], chat_id)
end
return 1
