-- Commit an update's outcome while its chat lease is still held (infra/chat_state.py).
--
-- KEYS[1] lease    string, PX    <p>:cq:lease:<botId>:<chatId>   "<token>:<consumerId>" while leased (chat queue)
-- KEYS[2] state    string, EX    <p>:state:<botId>:<chatId>      the chat's state JSON after the update
-- KEYS[3] effects  string, EX    <p>:fx:<botId>:<updateId>       the update's actions JSON, until acknowledged
-- KEYS[4] affinity string, EX    <p>:aff:<botId>:<chatId>        "<sinceMs>:<revHash>" while a flow is under way
-- ARGV: token, state JSON ('' = no state: delete), state TTL s, effects JSON, effects TTL s,
--       affinity ('' = none: delete)
-- Returns: 1, or 0 when the caller's lease is gone (expired, or the chat leased again): nothing written.
-- The state write and the effects record land together or not at all; a redelivered update finds
-- its effects and only finishes sending them, so the engine never runs twice with effect.
local lease = redis.call('GET', KEYS[1])
if not lease or string.match(lease, '^(%d+):') ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[2])
else
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
end
redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5])
if ARGV[6] == nil or ARGV[6] == '' then
  redis.call('DEL', KEYS[4])
else
  redis.call('SET', KEYS[4], ARGV[6], 'EX', ARGV[3])
end
return 1
