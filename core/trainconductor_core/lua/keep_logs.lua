-- Keeps the end of each rank's log with a training, unless the training is
-- gone (retention removed it meanwhile: nothing would remove its logs).
--
-- KEYS: 1 training hash, 2 its kept logs
-- ARGV: rank, kept log (JSON), rank, kept log, ...
-- Returns 1 when kept, 0 when the training is gone.
if redis.call("EXISTS", KEYS[1]) == 0 then
  return 0
end
redis.call("HSET", KEYS[2], unpack(ARGV))
return 1
