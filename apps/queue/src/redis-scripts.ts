/**
 * The Lua scripts of the Redis queue. A full job cycle runs two of them: ENQUEUE
 * (producer) and FINISH (consumer). Each is atomic, and Redis replicates a script's
 * writes as one transaction, so a replica holds all of a script's effects or none.
 *
 * Keys of one shard (they share a hash tag in cluster mode): the stream of live jobs,
 * one hash per job, the ledger stream, the service-time hash; producers' inboxes are
 * derived from the same prefix, so they hash to the same slot.
 */

/**
 * KEYS: stream, job. ARGV: maxDepth, id, params, deadlineAt, enqueuedAt, data,
 * pexpire, resultTtl, tenant, producer ('' unless attended).
 * Returns the entry id; 0 when full; -1 when the id exists already (after rewriting
 * one field, so that a WAIT that follows covers the job: a resent enqueue after a
 * failover must not be acknowledged on the word of a write made elsewhere).
 */
export const ENQUEUE = `
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'resent', ARGV[5])
  return -1
end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
local e = redis.call('XADD', KEYS[1], '*', 'id', ARGV[2], 'params', ARGV[3], 'deadlineAt', ARGV[4], 'enqueuedAt', ARGV[5], 'p', ARGV[10], 'data', ARGV[6])
redis.call('HSET', KEYS[2], 'state', 'pending', 'ttl', ARGV[8], 'tenant', ARGV[9], 'p', ARGV[10], 'e', e)
redis.call('PEXPIRE', KEYS[2], ARGV[7])
return e`;

/**
 * Takes back an enqueue the client was refused (not replicated in time), unless a
 * consumer has received it. KEYS: stream, job. ARGV: entry id, group.
 */
export const UNDO = `
if redis.call('HGET', KEYS[2], 'state') ~= 'pending' then return 0 end
local pending = redis.call('XPENDING', KEYS[1], ARGV[2], ARGV[1], ARGV[1], 1)
if #pending > 0 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('XDEL', KEYS[1], ARGV[1])
return 1`;

/**
 * Stores a final state once — only while the job is pending — with its ledger entry,
 * its service-time sample and a notice in the producer's inbox, and acknowledges and
 * deletes the stream entry, all in one step: the acknowledgement never outlives the
 * result, and the ledger entry is exactly as durable as the result.
 *
 * KEYS: stream, job, ledger, service.
 * ARGV: 1 group, 2 entry id ('' from cancel: the job's own entry is deleted instead,
 * so no consumer receives it), 3 state, 4 data, 5 info, 6 default result ttl, 7 job
 * id, 8 worker, 9 attempt, 10 usage JSON, 11 error code, 12 reason, 13 service ms
 * ('' when the job did not run), 14 half-life ms, 15 ledger retention ms, 16 inbox
 * key prefix, 17 ring size.
 * Returns 1 when this call stored the final state, 0 when one was stored already.
 */
export const FINISH = `
local job = redis.call('HMGET', KEYS[2], 'state', 'ttl', 'tenant', 'p', 'e')
local stored = 0
if job[1] == 'pending' then
  redis.call('HSET', KEYS[2], 'state', ARGV[3], 'data', ARGV[4], 'info', ARGV[5])
  redis.call('PEXPIRE', KEYS[2], job[2] or ARGV[6])
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local entry = {'id', ARGV[7], 'outcome', ARGV[3], 'attempt', ARGV[9]}
  if job[3] and job[3] ~= '' then entry[#entry + 1] = 'tenant'; entry[#entry + 1] = job[3] end
  if ARGV[8] ~= '' then entry[#entry + 1] = 'worker'; entry[#entry + 1] = ARGV[8] end
  if ARGV[10] ~= '' then entry[#entry + 1] = 'usage'; entry[#entry + 1] = ARGV[10] end
  if ARGV[11] ~= '' then entry[#entry + 1] = 'error'; entry[#entry + 1] = ARGV[11] end
  if ARGV[12] ~= '' then entry[#entry + 1] = 'reason'; entry[#entry + 1] = ARGV[12] end
  redis.call('XADD', KEYS[3], 'MINID', '~', now - tonumber(ARGV[15]), '*', unpack(entry))
  if ARGV[13] ~= '' then
    local x = tonumber(ARGV[13])
    local s = redis.call('HMGET', KEYS[4], 'n', 'mean', 'w', 'at', 'i')
    local n = tonumber(s[1]) or 0
    local at = tonumber(s[4]) or now
    local w = 0
    if n > 0 then w = tonumber(s[3]) * math.pow(2, -math.max(0, now - at) / tonumber(ARGV[14])) end
    local mean = ((tonumber(s[2]) or 0) * w + x) / (w + 1)
    local i = ((tonumber(s[5]) or -1) + 1) % tonumber(ARGV[17])
    redis.call('HSET', KEYS[4], 'n', n + 1, 'mean', mean, 'w', w + 1, 'at', math.max(now, at), 'i', i, 'r' .. i, x .. ':' .. now)
  end
  if job[4] and job[4] ~= '' then
    local inbox = ARGV[16] .. job[4]
    redis.call('RPUSH', inbox, ARGV[7])
    redis.call('PEXPIRE', inbox, 60000)
  end
  stored = 1
end
if ARGV[2] ~= '' then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[1], ARGV[2])
elseif stored == 1 and job[5] then
  redis.call('XDEL', KEYS[1], job[5])
end
return stored`;
