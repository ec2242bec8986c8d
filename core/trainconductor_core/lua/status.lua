#!lua flags=allow-oom
-- Records what the controller observed of a training, unless the controller
-- acted on an older generation than the last status written (an older view
-- never overwrites a newer one) or the training already reached a final
-- phase (final phases never change). Moves the training between phase
-- indexes and appends an event when phase, reason or message changed.
--
-- When the training reaches a final phase, what only an unfinished training
-- needs goes: its trace context, and all but the last events of its stream,
-- which is then stored at its own size (a stream's node is allocated 4 KiB
-- ahead of its entries, most of a finished training's memory otherwise). Its
-- finish time is always recorded: retention counts from it.
--
-- Runs when Redis is out of memory (allow-oom): what Kubernetes did must be
-- recorded, and a status write is small and bounded by the trainings that
-- run; only new trainings are refused.
--
-- KEYS: 1 training hash, 2 training events, 3 all events
-- ARGV: 1 id, 2 now (ms), 3 observed generation, 4 training events cap,
--       5 all events cap, 6 phase index prefix, 7 phase, 8 reason,
--       9 message, 10 conditions (JSON), 11 job name, 12 attempts,
--       13 start time (ms, "" keeps), 14 finish time (ms, "" keeps),
--       15 events a finished training keeps, 16 place in its queue (from 1;
--       0: not waiting), 17 retries spent, 18.. final phases
-- Returns -1 when there is no such training, 0 when the write was refused
-- as stale, 1 when written without a visible change, 2 when an event was
-- appended.
if redis.call("EXISTS", KEYS[1]) == 0 then
  return -1
end
local old = redis.call("HMGET", KEYS[1], "observed_generation", "phase", "reason", "message",
  "generation", "cancel_requested", "start_time", "finish_time", "queue_position")
local observed = tonumber(ARGV[3])
if observed < tonumber(old[1]) then
  return 0
end
local phase = ARGV[7]
local was_final, is_final = false, false
for i = 18, #ARGV do
  if old[2] == ARGV[i] then
    was_final = true
  end
  if phase == ARGV[i] then
    is_final = true
  end
end
if was_final and phase ~= old[2] then
  return 0
end
local finishing = is_final and not was_final

local fields = {"observed_generation", observed, "phase", phase, "reason", ARGV[8],
  "message", ARGV[9], "conditions", ARGV[10], "job_name", ARGV[11], "attempts", ARGV[12],
  "retries", ARGV[17]}
if ARGV[13] ~= "" and (old[7] == false or old[7] == "") then
  fields[#fields + 1] = "start_time"
  fields[#fields + 1] = ARGV[13]
end
if ARGV[14] ~= "" then
  fields[#fields + 1] = "finish_time"
  fields[#fields + 1] = ARGV[14]
elseif finishing and (old[8] == false or old[8] == "") then
  fields[#fields + 1] = "finish_time"
  fields[#fields + 1] = ARGV[2]
end
local position = ARGV[16]
local old_position = old[9] or "0"
if position ~= old_position then
  if position == "0" then
    redis.call("HDEL", KEYS[1], "queue_position")
  else
    fields[#fields + 1] = "queue_position"
    fields[#fields + 1] = position
  end
end
redis.call("HSET", KEYS[1], unpack(fields))

local id = ARGV[1]
if phase ~= old[2] then
  redis.call("ZREM", ARGV[6] .. old[2], id)
  redis.call("ZADD", ARGV[6] .. phase, 0, id)
end
if phase == old[2] and ARGV[8] == old[3] and ARGV[9] == old[4] and position == old_position then
  return 1
end
local event = {"training_id", id, "phase", phase, "reason", ARGV[8], "message", ARGV[9],
  "time", ARGV[2], "generation", old[5], "cancel_requested", old[6]}
if position ~= "0" then
  event[#event + 1] = "queue_position"
  event[#event + 1] = position
end
if ARGV[12] ~= "0" then
  event[#event + 1] = "attempt"
  event[#event + 1] = ARGV[12]
end
redis.call("XADD", KEYS[2], "MAXLEN", "~", ARGV[4], "*", unpack(event))
redis.call("XADD", KEYS[3], "MAXLEN", "~", ARGV[5], "*", unpack(event))

if finishing then
  redis.call("HDEL", KEYS[1], "trace_context")
  -- The stream is written again with its last events under their own ids,
  -- and with what it counted (entries added, the newest deleted id): a
  -- watch resumed before the first event kept is told that it missed some.
  local kept = tonumber(ARGV[15])
  local info = redis.call("XINFO", "STREAM", KEYS[2])
  local stats = {}
  for i = 1, #info, 2 do
    stats[info[i]] = info[i + 1]
  end
  local newest = redis.call("XREVRANGE", KEYS[2], "+", "-", "COUNT", kept + 1)
  local deleted = stats["max-deleted-entry-id"]
  if #newest > kept then
    deleted = newest[kept + 1][1]
  end
  redis.call("DEL", KEYS[2])
  for i = math.min(#newest, kept), 1, -1 do
    redis.call("XADD", KEYS[2], newest[i][1], unpack(newest[i][2]))
  end
  redis.call("XSETID", KEYS[2], stats["last-generated-id"], "ENTRIESADDED",
    stats["entries-added"], "MAXDELETEDID", deleted)
  -- A restored stream's nodes are allocated at their size.
  redis.call("RESTORE", KEYS[2], 0, redis.call("DUMP", KEYS[2]), "REPLACE")
end
return 2
