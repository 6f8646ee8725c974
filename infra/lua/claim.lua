-- Lease the chat whose turn comes first and return its head update (infra/chat_queue.py).
--
-- KEYS[1] ready   zset          <p>:cq:ready          member "<botId>:<chatId>", score = turn; leased chats are absent
-- KEYS[2] leases  zset          <p>:cq:leases         member "<botId>:<chatId>", score = lease deadline (ms)
-- KEYS[3] tries   hash          <p>:cq:tries          field member -> deliveries of that chat's current head
-- KEYS[4] fence   string (int)  <p>:cq:fence          fencing-token counter (strictly increasing)
-- KEYS[5] seq     string (int)  <p>:cq:seq            turn counter for `ready` scores
-- Built here from ARGV[1] (prefix) and the member, as the chat is only known inside the script:
--   chat   list          <p>:cq:chat:<member>    entries "<updateId>:<enqueuedMs>:<payload>"
--   lease  string, PX    <p>:cq:lease:<member>   "<token>:<consumerId>" while leased
--   depth  string (int)  <p>:cq:depth:<botId>    updates queued for the bot
--   heads  zset          <p>:cq:heads:<botId>    member chatId, score = enqueue ms of the head
--   dlq    list          <p>:dlq:in:<botId>      "<json header>\n<payload>" of dead-lettered updates
-- ARGV: prefix, consumerId, leaseMs, maxDeliveries
-- Returns: {member, headEntry, token, deliveries} or false when no chat is ready.
-- Time: Redis TIME. Expired leases are recovered first: their chat gets a new turn with the same head.
local prefix, consumer, lease_ms, max_deliveries = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 100)
for _, m in ipairs(expired) do
  redis.call('ZREM', KEYS[2], m)
  redis.call('DEL', prefix .. ':cq:lease:' .. m)
  if redis.call('LLEN', prefix .. ':cq:chat:' .. m) > 0 then
    redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[5]), m)
  end
end

for _ = 1, 16 do
  local pick = redis.call('ZRANGE', KEYS[1], 0, 0)
  if #pick == 0 then
    return false
  end
  local m = pick[1]
  redis.call('ZREM', KEYS[1], m)
  local chat = prefix .. ':cq:chat:' .. m
  local head = redis.call('LINDEX', chat, 0)
  if head then
    local tries = redis.call('HINCRBY', KEYS[3], m, 1)
    if tries <= max_deliveries then
      local token = redis.call('INCR', KEYS[4])
      redis.call('SET', prefix .. ':cq:lease:' .. m, token .. ':' .. consumer, 'PX', lease_ms)
      redis.call('ZADD', KEYS[2], now + lease_ms, m)
      return {m, head, token, tries}
    end
    -- A poison update: delivered max_deliveries times and never settled. Dead-letter it, move on.
    local bot_id, chat_id = string.match(m, '^([^:]+):(.+)$')
    local update_id = string.match(head, '^([^:]+):')
    local header = cjson.encode({
      chatId = chat_id, updateId = update_id, deliveries = tries - 1, at = now,
      reason = 'delivered ' .. (tries - 1) .. ' times without an ack',
    })
    redis.call('LPOP', chat)
    redis.call('RPUSH', prefix .. ':dlq:in:' .. bot_id, header .. '\n' .. string.sub(head, #string.match(head, '^[^:]+:[^:]+:') + 1))
    redis.call('HDEL', KEYS[3], m)
    redis.call('DECR', prefix .. ':cq:depth:' .. bot_id)
    local next_head = redis.call('LINDEX', chat, 0)
    if next_head then
      redis.call('ZADD', prefix .. ':cq:heads:' .. bot_id, tonumber(string.match(next_head, '^[^:]+:(%d+)')), chat_id)
      redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[5]), m)
    else
      redis.call('ZREM', prefix .. ':cq:heads:' .. bot_id, chat_id)
    end
  end
end
return false
