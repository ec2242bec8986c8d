#!lua flags=allow-oom
-- Looks again at one training that reported progress before a cutoff, or
-- that is marked stalled, and marks it stalled when it still is: RUNNING,
-- and its last report older than the cutoff. A stalled one gets an event
-- (reason Stalled) and moves from the index of those that reported to that
-- of the stalled; its next report moves it back (progress.lua).
--
-- A training no longer running leaves both indexes, and a stall it had is
-- cleared: no trainer reports while it waits, is suspended or finished. Its
-- next run's first report puts it back.
--
-- KEYS: 1 training hash, 2 training events, 3 all events, 4 index of the
--       trainings that reported, 5 index of stalled trainings
-- ARGV: 1 id, 2 now (ms), 3 cutoff (ms): reported before it is stalled,
--       4 training events cap, 5 all events cap, 6 event message,
--       7 the RUNNING phase
-- Returns -1 when it is gone or no longer running (taken out of both
-- indexes), 0 when it is not stalled or was already, 1 when marked now.
local id = ARGV[1]
local phase, reported, stalled, generation, cancel_requested = unpack(redis.call("HMGET",
  KEYS[1], "phase", "progress_time", "stalled_since", "generation", "cancel_requested"))
if phase ~= ARGV[7] then
  redis.call("ZREM", KEYS[4], id)
  redis.call("ZREM", KEYS[5], id)
  if stalled then
    redis.call("HDEL", KEYS[1], "stalled_since")
  end
  return -1
end
if stalled and stalled ~= "" then
  return 0
end
if tonumber(reported or "0") >= tonumber(ARGV[3]) then
  return 0
end
redis.call("HSET", KEYS[1], "stalled_since", ARGV[2])
redis.call("ZREM", KEYS[4], id)
redis.call("ZADD", KEYS[5], ARGV[2], id)
local event = {"training_id", id, "phase", phase, "reason", "Stalled", "message", ARGV[6],
  "time", ARGV[2], "generation", generation, "cancel_requested", cancel_requested,
  "stalled", "1"}
redis.call("XADD", KEYS[2], "MAXLEN", "~", ARGV[4], "*", unpack(event))
redis.call("XADD", KEYS[3], "MAXLEN", "~", ARGV[5], "*", unpack(event))
return 1
