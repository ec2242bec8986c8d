-- Records what the controller observed of a training, unless the controller
-- acted on an older generation than the last status written (an older view
-- never overwrites a newer one) or the training already reached a final
-- phase (final phases never change). Moves the training between phase
-- indexes and appends an event when phase, reason or message changed.
--
-- KEYS: 1 training hash, 2 training events, 3 all events
-- ARGV: 1 id, 2 now (ms), 3 observed generation, 4 training events cap,
--       5 all events cap, 6 phase index prefix, 7 phase, 8 reason,
--       9 message, 10 conditions (JSON), 11 job name, 12 attempts,
--       13 start time (ms, "" keeps), 14 finish time (ms, "" keeps),
--       15.. final phases
-- Returns -1 when there is no such training, 0 when the write was refused
-- as stale, 1 when written without a visible change, 2 when an event was
-- appended.
if redis.call("EXISTS", KEYS[1]) == 0 then
  return -1
end
local old = redis.call("HMGET", KEYS[1], "observed_generation", "phase", "reason", "message",
  "generation", "cancel_requested", "start_time")
local observed = tonumber(ARGV[3])
if observed < tonumber(old[1]) then
  return 0
end
local phase = ARGV[7]
for i = 15, #ARGV do
  if old[2] == ARGV[i] and phase ~= old[2] then
    return 0
  end
end

local fields = {"observed_generation", observed, "phase", phase, "reason", ARGV[8],
  "message", ARGV[9], "conditions", ARGV[10], "job_name", ARGV[11], "attempts", ARGV[12]}
if ARGV[13] ~= "" and (old[7] == false or old[7] == "") then
  fields[#fields + 1] = "start_time"
  fields[#fields + 1] = ARGV[13]
end
if ARGV[14] ~= "" then
  fields[#fields + 1] = "finish_time"
  fields[#fields + 1] = ARGV[14]
end
redis.call("HSET", KEYS[1], unpack(fields))

local id = ARGV[1]
if phase ~= old[2] then
  redis.call("ZREM", ARGV[6] .. old[2], id)
  redis.call("ZADD", ARGV[6] .. phase, 0, id)
end
if phase == old[2] and ARGV[8] == old[3] and ARGV[9] == old[4] then
  return 1
end
local event = {"training_id", id, "phase", phase, "reason", ARGV[8], "message", ARGV[9],
  "time", ARGV[2], "generation", old[5], "cancel_requested", old[6]}
redis.call("XADD", KEYS[2], "MAXLEN", "~", ARGV[4], "*", unpack(event))
redis.call("XADD", KEYS[3], "MAXLEN", "~", ARGV[5], "*", unpack(event))
return 2
