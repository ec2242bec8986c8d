-- Records a new training with its indexes, its first event and its change
-- feed entry, or returns the training an earlier call with the same request
-- id created. All or nothing.
--
-- KEYS: 1 request-id key ("" when none), 2 training hash, 3 index of all,
--       4 phase index, 5 owner index, 6 change feed, 7 training events,
--       8 all events, 9-12 the indexes of the active phases (PENDING,
--       QUEUED, RUNNING, SUSPENDED), 13.. label indexes
-- ARGV: 1 id, 2 now (ms), 3 request-id ttl (s), 4 change feed cap,
--       5 training events cap, 6 all events cap, 7 reason, 8 message,
--       9 the hash's fields as one JSON object of strings (one argument
--       instead of forty: packing arguments dominates the cost of a create),
--       10 most active trainings per owner (0: no cap)
-- Returns {1, id} when created, {0, id} for an earlier call's training,
-- {-2, id} when that training has since been removed (retention), {-1,
-- count} when the owner is at the cap.
--
-- Refused whole when Redis is out of memory: its first write is denied.
local id = ARGV[1]
if KEYS[1] ~= "" then
  local existing = redis.call("GET", KEYS[1])
  if existing then
    local hash = string.sub(KEYS[2], 1, #KEYS[2] - #id) .. existing
    if redis.call("EXISTS", hash) == 0 then
      return {-2, existing}
    end
    return {0, existing}
  end
end

-- The owner's active trainings: the owner index meets each active phase
-- index (phases are disjoint, so the counts add up). Checked here, in the
-- same script as the write, so concurrent creates can not pass it together.
local cap = tonumber(ARGV[10])
if cap > 0 then
  local active = 0
  for i = 9, 12 do
    active = active + redis.call("ZINTERCARD", 2, KEYS[5], KEYS[i], "LIMIT", cap - active)
    if active >= cap then
      return {-1, active}
    end
  end
end

if KEYS[1] ~= "" then
  redis.call("SET", KEYS[1], id, "EX", ARGV[3])
end

local fields = {}
for name, value in pairs(cjson.decode(ARGV[9])) do
  fields[#fields + 1] = name
  fields[#fields + 1] = value
end
redis.call("HSET", KEYS[2], unpack(fields))

redis.call("ZADD", KEYS[3], 0, id)
redis.call("ZADD", KEYS[4], 0, id)
redis.call("ZADD", KEYS[5], 0, id)
for i = 13, #KEYS do
  redis.call("ZADD", KEYS[i], 0, id)
end

redis.call("XADD", KEYS[6], "MAXLEN", "~", ARGV[4], "*", "training_id", id, "generation", 1)
local event = {"training_id", id, "phase", "PENDING", "reason", ARGV[7], "message", ARGV[8],
  "time", ARGV[2], "generation", 1, "cancel_requested", 0}
redis.call("XADD", KEYS[7], "MAXLEN", "~", ARGV[5], "*", unpack(event))
redis.call("XADD", KEYS[8], "MAXLEN", "~", ARGV[6], "*", unpack(event))
return {1, id}
