#!lua flags=allow-oom
-- Removes a training that finished before a cutoff, with everything of it:
-- its hash, its events, its kept logs and its entries in every index; leaves a tombstone
-- naming its owner, so that reading it says it was removed. Whether it is
-- finished, and when it finished, is read here, in the same script as the
-- removal: a training that is not finished, or finished after the cutoff,
-- is left as it is, whatever the caller read before.
--
-- Its request-id key is left to expire on its own: a late retry then reads
-- that its training was removed (create.lua), instead of making another.
--
-- Runs when Redis is out of memory (allow-oom): it frees memory.
--
-- KEYS: 1 training hash, 2 training events, 3 tombstone, 4 index of all,
--       5 the final phase's index the caller found it in, 6.. its label
--       indexes (the spec, which holds the labels, never changes)
-- ARGV: 1 id, 2 cutoff: finished at or before (ms), 3 tombstone ttl (s; 0:
--       no tombstone), 4 key prefix, 5.. final phases
-- Returns 1 when removed, 0 when kept, -1 when there was no such training
-- (the index entries the caller found are removed).
local id = ARGV[1]
if redis.call("EXISTS", KEYS[1]) == 0 then
  redis.call("ZREM", KEYS[4], id)
  redis.call("ZREM", KEYS[5], id)
  return -1
end
local phase, finished, created, owner = unpack(redis.call("HMGET", KEYS[1], "phase",
  "finish_time", "create_time", "owner"))
local final = false
for i = 5, #ARGV do
  if phase == ARGV[i] then
    final = true
  end
end
if not final then
  return 0
end
if not finished or finished == "" then
  -- Recorded before every finished training had a finish time: its last
  -- event is when it finished.
  local last = redis.call("XREVRANGE", KEYS[2], "+", "-", "COUNT", 1)
  finished = created
  if #last > 0 then
    finished = string.match(last[1][1], "^%d+")
  end
end
if tonumber(finished) > tonumber(ARGV[2]) then
  return 0
end

local prefix = ARGV[4]
redis.call("DEL", KEYS[1], KEYS[2], prefix .. "logs:" .. id)
redis.call("ZREM", KEYS[4], id)
-- The phase and owner indexes as the hash names them (the caller's read may
-- be older; final phases and owners never change, but this holds anyway).
redis.call("ZREM", prefix .. "idx:phase:" .. phase, id)
redis.call("ZREM", prefix .. "idx:owner:" .. owner, id)
for i = 6, #KEYS do
  redis.call("ZREM", KEYS[i], id)
end
-- The progress indexes (a stall pass drops a finished training from them
-- too, but not before this may run).
redis.call("ZREM", prefix .. "progress:reported", id)
redis.call("ZREM", prefix .. "progress:stalled", id)
if tonumber(ARGV[3]) > 0 then
  redis.call("SET", KEYS[3], owner, "EX", ARGV[3])
end
return 1
