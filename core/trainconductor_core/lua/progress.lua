#!lua flags=allow-oom
-- Records a trainer's latest progress report with its training, and, at
-- most once per training per throttle period, a progress event on the
-- training's stream and on the stream of all trainings: a trainer that
-- reports 50 times a second writes one hash and one sorted-set entry each
-- time, and an event every few seconds, so neither Redis nor the watchers
-- are flooded. Only the latest report is kept.
--
-- The step rate is a moving average (weighted by time, recent reports
-- counting most, over about `tau`): a training that speeds up after its
-- warm-up or slows down on a busy node moves its ETA within minutes. A step
-- below the last one (a restart from a checkpoint, a new attempt) starts
-- the average again.
--
-- A report of a stalled training clears the stall and makes an event at
-- once (reason ProgressResumed), whatever the throttle.
--
-- Runs when Redis is out of memory (allow-oom): a report is small and
-- replaces the last one of a training that exists.
--
-- KEYS: 1 training hash, 2 training events, 3 all events, 4 index of the
--       trainings that reported (score: when), 5 index of stalled trainings
-- ARGV: 1 id, 2 now (ms), 3 the report (base64 Progress), 4 step,
--       5 total steps (0: unknown), 6 throttle (ms), 7 training events cap,
--       8 all events cap, 9 event message, 10 tau of the step rate (ms),
--       11.. final phases
-- Returns {-1} when there is no such training, {0, phase} when it finished
-- (nothing written), else {1 or 2 (2: an event was appended), the ETA in
-- ms or "" when not known}.
if redis.call("EXISTS", KEYS[1]) == 0 then
  return {-1}
end
local old = redis.call("HMGET", KEYS[1], "phase", "generation", "cancel_requested",
  "queue_position", "progress_step", "progress_time", "progress_rate", "progress_event_time",
  "stalled_since")
local phase = old[1]
for i = 11, #ARGV do
  if phase == ARGV[i] then
    return {0, phase}
  end
end
local now = tonumber(ARGV[2])
local step, total = tonumber(ARGV[4]), tonumber(ARGV[5])
local last_step, last_time, rate = tonumber(old[5]), tonumber(old[6]), tonumber(old[7])

-- steps per millisecond
if last_step == nil or step < last_step then
  rate = nil
elseif step > last_step and now > last_time then
  local recent = (step - last_step) / (now - last_time)
  if rate == nil then
    rate = recent
  else
    local weight = 1 - math.exp(-(now - last_time) / tonumber(ARGV[10]))
    rate = rate + weight * (recent - rate)
  end
end
local fields = {"progress", ARGV[3], "progress_step", ARGV[4], "progress_time", ARGV[2]}
local eta = ""
if rate ~= nil then
  fields[#fields + 1] = "progress_rate"
  fields[#fields + 1] = string.format("%.17g", rate)
  if total > 0 and rate > 0 then
    eta = string.format("%d", math.max(total - step, 0) / rate)
  end
else
  redis.call("HDEL", KEYS[1], "progress_rate")
end
if eta ~= "" then
  fields[#fields + 1] = "progress_eta"
  fields[#fields + 1] = eta
else
  redis.call("HDEL", KEYS[1], "progress_eta")
end

local id = ARGV[1]
local resumed = old[9] ~= false and old[9] ~= ""
if resumed then
  redis.call("HDEL", KEYS[1], "stalled_since")
  redis.call("ZREM", KEYS[5], id)
end
redis.call("ZADD", KEYS[4], now, id)
local last_event = tonumber(old[8]) or 0
if not resumed and now - last_event < tonumber(ARGV[6]) then
  redis.call("HSET", KEYS[1], unpack(fields))
  return {1, eta}
end
fields[#fields + 1] = "progress_event_time"
fields[#fields + 1] = ARGV[2]
redis.call("HSET", KEYS[1], unpack(fields))

local reason = "Progress"
if resumed then
  reason = "ProgressResumed"
end
local event = {"training_id", id, "phase", phase, "reason", reason, "message", ARGV[9],
  "time", ARGV[2], "generation", old[2], "cancel_requested", old[3], "progress", ARGV[3]}
if eta ~= "" then
  event[#event + 1] = "progress_eta"
  event[#event + 1] = eta
end
if old[4] and old[4] ~= "0" then
  event[#event + 1] = "queue_position"
  event[#event + 1] = old[4]
end
redis.call("XADD", KEYS[2], "MAXLEN", "~", ARGV[7], "*", unpack(event))
redis.call("XADD", KEYS[3], "MAXLEN", "~", ARGV[8], "*", unpack(event))
return {2, eta}
