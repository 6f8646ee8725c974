-- Admit one outbound Bot API call, or say how long to wait (infra/outbound.py, docs/outbound.md).
--
-- KEYS[1] bot     hash, PX     <p>:out:tb:bot:<botId>            token bucket: tokens (float), ts (ms)
-- KEYS[2] chat    hash, PX     <p>:out:tb:chat:<botId>:<chatId>  token bucket: tokens (float), ts (ms)
-- KEYS[3] group   hash, PX     <p>:out:tb:group:<botId>:<chatId> token bucket, used only when ARGV[3] = 1
-- KEYS[4] blocked string, PX   <p>:out:blocked:<botId>           "blocked until" (ms, Redis clock) after a 429
-- ARGV[1] mode: "admit" or "block"
-- admit: ARGV[2] metered (1: take from the buckets; 0: only honour the block), ARGV[3] group (1/0),
--        ARGV[4..9] bot rate (/s), bot burst, chat rate (/s), chat burst, group rate (/s), group burst
--        Returns 0 when admitted (one token taken from every bucket, all or none), else the wait in ms:
--        the largest of the block's remainder and each empty bucket's time to its next token.
-- block: ARGV[2] block for this many ms from now; an existing later block is kept. Returns the block's end.
-- Time: Redis TIME (one clock for every process). Buckets start full and expire once they would be full again.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000

if ARGV[1] == 'block' then
  local till = now + tonumber(ARGV[2])
  local current = tonumber(redis.call('GET', KEYS[4]) or '0')
  if current > till then
    return math.floor(current)
  end
  redis.call('SET', KEYS[4], tostring(math.ceil(till)), 'PX', math.ceil(till - now) + 1)
  return math.ceil(till)
end

local wait = 0
local blocked = tonumber(redis.call('GET', KEYS[4]) or '0')
if blocked > now then
  wait = blocked - now
end
if ARGV[2] ~= '1' then
  return math.ceil(wait)
end

local buckets = {{KEYS[1], tonumber(ARGV[4]), tonumber(ARGV[5])}, {KEYS[2], tonumber(ARGV[6]), tonumber(ARGV[7])}}
if ARGV[3] == '1' then
  buckets[3] = {KEYS[3], tonumber(ARGV[8]), tonumber(ARGV[9])}
end
local levels = {}
for i, b in ipairs(buckets) do
  local key, rate, burst = b[1], b[2], b[3]
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or burst
  local ts = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
  levels[i] = tokens
  if tokens < 1 then
    wait = math.max(wait, (1 - tokens) * 1000 / rate)
  end
end
if wait > 0 then
  return math.max(1, math.ceil(wait))
end
for i, b in ipairs(buckets) do
  local key, rate, burst = b[1], b[2], b[3]
  local tokens = levels[i] - 1
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', key, math.ceil((burst - tokens) * 1000 / rate) + 1000)
end
return 0
