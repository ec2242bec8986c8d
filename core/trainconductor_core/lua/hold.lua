#!lua flags=allow-oom
-- Records that the user wants a training held (out of its queue) or
-- released (back in it): raises its generation and tells the controller
-- through the change feed. A finished training, one whose cancellation is
-- recorded, and one already as asked are left as they are.
-- Runs when Redis is out of memory (allow-oom), as a cancellation does:
-- taking a training out of a queue frees quota, and the write is small.
--
-- KEYS: 1 training hash, 2 change feed, 3 training events, 4 all events
-- ARGV: 1 id, 2 now (ms), 3 change feed cap, 4 training events cap,
--       5 all events cap, 6 held ("1") or released ("0"), 7 reason,
--       8 message, 9.. final phases
-- Returns -1 when there is no such training, 0 when nothing changed, 1 when
-- the request was recorded.
if redis.call("EXISTS", KEYS[1]) == 0 then
  return -1
end
local phase, requested, held, position, attempts = unpack(redis.call("HMGET", KEYS[1],
  "phase", "cancel_requested", "held", "queue_position", "attempts"))
for i = 9, #ARGV do
  if phase == ARGV[i] then
    return 0
  end
end
if requested == "1" or (held or "0") == ARGV[6] then
  return 0
end
local generation = redis.call("HINCRBY", KEYS[1], "generation", 1)
redis.call("HSET", KEYS[1], "held", ARGV[6])
local id = ARGV[1]
redis.call("XADD", KEYS[2], "MAXLEN", "~", ARGV[3], "*", "training_id", id, "generation", generation)
local event = {"training_id", id, "phase", phase, "reason", ARGV[7], "message", ARGV[8],
  "time", ARGV[2], "generation", generation, "cancel_requested", 0,
  "queue_position", position or "0"}
if attempts and attempts ~= "0" then
  event[#event + 1] = "attempt"
  event[#event + 1] = attempts
end
redis.call("XADD", KEYS[3], "MAXLEN", "~", ARGV[4], "*", unpack(event))
redis.call("XADD", KEYS[4], "MAXLEN", "~", ARGV[5], "*", unpack(event))
return 1
