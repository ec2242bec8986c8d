#!lua flags=allow-oom
-- Records that the user wants a training stopped: raises its generation and
-- tells the controller through the change feed. A training that already
-- finished, or whose cancellation is already recorded, is left as it is.
-- Runs when Redis is out of memory (allow-oom): stopping a training must
-- stay possible, and a cancellation is small and recorded once.
--
-- KEYS: 1 training hash, 2 change feed, 3 training events, 4 all events
-- ARGV: 1 id, 2 now (ms), 3 change feed cap, 4 training events cap,
--       5 all events cap, 6 reason, 7 message, 8.. final phases
-- Returns -1 when there is no such training, 0 when nothing changed, 1 when
-- the cancellation was recorded.
if redis.call("EXISTS", KEYS[1]) == 0 then
  return -1
end
local phase, requested, attempts = unpack(redis.call("HMGET", KEYS[1], "phase",
  "cancel_requested", "attempts"))
for i = 8, #ARGV do
  if phase == ARGV[i] then
    return 0
  end
end
if requested == "1" then
  return 0
end
local generation = redis.call("HINCRBY", KEYS[1], "generation", 1)
redis.call("HSET", KEYS[1], "cancel_requested", 1)
local id = ARGV[1]
redis.call("XADD", KEYS[2], "MAXLEN", "~", ARGV[3], "*", "training_id", id, "generation", generation)
local event = {"training_id", id, "phase", phase, "reason", ARGV[6], "message", ARGV[7],
  "time", ARGV[2], "generation", generation, "cancel_requested", 1}
if attempts and attempts ~= "0" then
  event[#event + 1] = "attempt"
  event[#event + 1] = attempts
end
redis.call("XADD", KEYS[3], "MAXLEN", "~", ARGV[4], "*", unpack(event))
redis.call("XADD", KEYS[4], "MAXLEN", "~", ARGV[5], "*", unpack(event))
return 1
