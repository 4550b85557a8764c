/**
 * The Lua scripts of the Redis queue. A job's cycle runs two of them — ENQUEUE
 * (producer) and FINISH (consumer) — and each call carries every job of a batch: the
 * jobs enqueued (or finished) by one process while its previous call was under way.
 * Each call is atomic, and Redis replicates a script's writes as one transaction, so a
 * replica holds all of a call's effects or none.
 *
 * Keys of one shard (they share a hash tag in cluster mode): the stream of live jobs,
 * one hash per job, the ledger stream, the service-time hash.
 */

/**
 * KEYS: stream, then one job hash per job. ARGV: maxDepth, then per job nine values:
 * id, params, deadlineAt, enqueuedAt, data, pexpire ms, result ttl ms, tenant, producer
 * ('' unless attended).
 * Returns, per job, its entry id; 0 when the queue was full; -1 when the id exists
 * already (after rewriting one field, so that a WAIT that follows covers the job: a
 * resent enqueue after a failover must not be acknowledged on the word of a write made
 * elsewhere).
 */
export const ENQUEUE = `
local out = {}
local depth = redis.call('XLEN', KEYS[1])
local max = tonumber(ARGV[1])
for i = 2, #KEYS do
  local b = 2 + (i - 2) * 9
  local key = KEYS[i]
  if redis.call('EXISTS', key) == 1 then
    redis.call('HSET', key, 'resent', ARGV[b + 3])
    out[i - 1] = -1
  elseif depth >= max then
    out[i - 1] = 0
  else
    local e = redis.call('XADD', KEYS[1], '*', 'id', ARGV[b], 'params', ARGV[b + 1], 'deadlineAt', ARGV[b + 2], 'enqueuedAt', ARGV[b + 3], 'p', ARGV[b + 8], 'data', ARGV[b + 4])
    redis.call('HSET', key, 'state', 'pending', 'ttl', ARGV[b + 6], 'tenant', ARGV[b + 7], 'e', e)
    redis.call('PEXPIRE', key, ARGV[b + 5])
    depth = depth + 1
    out[i - 1] = e
  end
end
return out`;

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
 * Stores each job's final state once — only while the job is pending — with its ledger
 * entry and its service-time sample, and acknowledges and deletes its stream entry, all
 * in one step: the acknowledgement never outlives the result, and the ledger entry is
 * exactly as durable as the result. (Producers are told after the `WAIT`, so a waiter
 * is never told of a result that a failover could still take back.)
 *
 * KEYS: stream, ledger, service, then one job hash per job.
 * ARGV: 1 group, 2 default result ttl, 3 half-life ms, 4 ledger retention ms, 5 ring
 * size; then per job: entry id ('' from cancel: the job's own entry is deleted instead,
 * so no consumer receives it), state, data, info, job id, worker, attempt, usage JSON,
 * error code, reason, service ms ('' when the job did not run).
 * Returns, per job, 1 when this call stored its final state, 0 when one was there already.
 */
export const FINISH = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local samples = {}
local trim = {'MINID', '~', now - tonumber(ARGV[4])}
for i = 4, #KEYS do
  local b = 6 + (i - 4) * 11
  local key = KEYS[i]
  local job = redis.call('HMGET', key, 'state', 'ttl', 'tenant', 'e')
  local stored = 0
  if job[1] == 'pending' then
    redis.call('HSET', key, 'state', ARGV[b + 1], 'data', ARGV[b + 2], 'info', ARGV[b + 3])
    redis.call('PEXPIRE', key, job[2] or ARGV[2])
    local entry = {KEYS[2]}
    for _, v in ipairs(trim) do entry[#entry + 1] = v end
    entry[#entry + 1] = '*'
    entry[#entry + 1] = 'id'; entry[#entry + 1] = ARGV[b + 4]
    entry[#entry + 1] = 'outcome'; entry[#entry + 1] = ARGV[b + 1]
    entry[#entry + 1] = 'attempt'; entry[#entry + 1] = ARGV[b + 6]
    if job[3] and job[3] ~= '' then entry[#entry + 1] = 'tenant'; entry[#entry + 1] = job[3] end
    if ARGV[b + 5] ~= '' then entry[#entry + 1] = 'worker'; entry[#entry + 1] = ARGV[b + 5] end
    if ARGV[b + 7] ~= '' then entry[#entry + 1] = 'usage'; entry[#entry + 1] = ARGV[b + 7] end
    if ARGV[b + 8] ~= '' then entry[#entry + 1] = 'error'; entry[#entry + 1] = ARGV[b + 8] end
    if ARGV[b + 9] ~= '' then entry[#entry + 1] = 'reason'; entry[#entry + 1] = ARGV[b + 9] end
    redis.call('XADD', unpack(entry))
    trim = {}
    if ARGV[b + 10] ~= '' then samples[#samples + 1] = tonumber(ARGV[b + 10]) end
    stored = 1
  end
  if ARGV[b] ~= '' then
    redis.call('XACK', KEYS[1], ARGV[1], ARGV[b])
    redis.call('XDEL', KEYS[1], ARGV[b])
  elseif stored == 1 and job[4] then
    redis.call('XDEL', KEYS[1], job[4])
  end
  out[i - 3] = stored
end
if #samples > 0 then
  local s = redis.call('HMGET', KEYS[3], 'n', 'mean', 'w', 'at', 'i')
  local n = tonumber(s[1]) or 0
  local at = tonumber(s[4]) or now
  local w = 0
  if n > 0 then w = tonumber(s[3]) * math.pow(2, -math.max(0, now - at) / tonumber(ARGV[3])) end
  local mean = tonumber(s[2]) or 0
  local i = tonumber(s[5]) or -1
  local fields = {}
  for _, x in ipairs(samples) do
    mean = (mean * w + x) / (w + 1)
    w = w + 1
    i = (i + 1) % tonumber(ARGV[5])
    fields[#fields + 1] = 'r' .. i
    fields[#fields + 1] = x .. ':' .. now
  end
  redis.call('HSET', KEYS[3], 'n', n + #samples, 'mean', mean, 'w', w, 'at', math.max(now, at), 'i', i, unpack(fields))
end
return out`;
