/**
 * The Lua scripts of the Redis queue. A job's cycle runs two of them — ENQUEUE
 * (producer) and FINISH (consumer) — and each call carries every job of a batch: the
 * jobs enqueued (or finished) by one process while its previous call was under way.
 * Each call is atomic, and Redis replicates a script's writes as one transaction, so a
 * replica holds all of a call's effects or none.
 *
 * What a job costs inside Redis is what Redis CPU per job is made of, so the scripts
 * keep it to four commands per job — ENQUEUE's `XADD` and `SET … NX PX`, FINISH's `GET`
 * and `SET … PX` — and do everything else once per call: the depth check, acknowledging
 * and deleting the finished entries (`XACK` and `XDEL` take many ids), one ledger entry
 * holding every job the call finished, one service-time update.
 *
 * Keys of one shard (they share a hash tag in cluster mode): the stream of live jobs,
 * one string per job (its state: see `job-state.ts`), the ledger stream, the
 * service-time hash.
 */

/**
 * KEYS: stream, then one job key per job. ARGV: maxDepth, then per job four values:
 * the entry's header (JSON: id, params, deadlineAt, enqueuedAt, producer), the job's
 * data, the job key's lifetime in ms, and the pending state's tail (`\n<result ttl
 * ms>\n<tenant>`). A stream entry has two fields, `h` and `d`: every field is work for
 * `XADD`, for `XREADGROUP`'s answer, for the replicas and the append-only file.
 * Returns, per job, its entry id; 0 when the queue was full; -1 when the id exists
 * already. The entry is added first and the job key set only if absent (`NX`), so one
 * command both checks and writes; a duplicate's entry is deleted again. Either way a
 * duplicate makes a write, so that a `WAIT` that follows covers the job: a resent
 * enqueue after a failover must not be acknowledged on the word of a write made
 * elsewhere.
 */
export const ENQUEUE = `
local out = {}
local depth = redis.call('XLEN', KEYS[1])
local max = tonumber(ARGV[1])
for i = 2, #KEYS do
  local b = 2 + (i - 2) * 4
  local key = KEYS[i]
  if depth >= max then
    if redis.call('EXISTS', key) == 1 then
      redis.call('XDEL', KEYS[1], redis.call('XADD', KEYS[1], '*', 'resent', '1'))
      out[i - 1] = -1
    else
      out[i - 1] = 0
    end
  else
    local e = redis.call('XADD', KEYS[1], '*', 'h', ARGV[b], 'd', ARGV[b + 1])
    if redis.call('SET', key, 'p\\n' .. e .. ARGV[b + 3], 'NX', 'PX', ARGV[b + 2]) then
      depth = depth + 1
      out[i - 1] = e
    else
      redis.call('XDEL', KEYS[1], e)
      out[i - 1] = -1
    end
  end
end
return out`;

/**
 * Takes back an enqueue the client was refused (not replicated in time), unless a
 * consumer has received it. KEYS: stream, job. ARGV: entry id, group.
 */
export const UNDO = `
local v = redis.call('GET', KEYS[2])
if not v or string.byte(v, 1) ~= 112 then return 0 end
local pending = redis.call('XPENDING', KEYS[1], ARGV[2], ARGV[1], ARGV[1], 1)
if #pending > 0 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('XDEL', KEYS[1], ARGV[1])
return 1`;

/**
 * Results up to this size travel in the producer's notice, so the producer needs no
 * second read; larger ones are read (`GET`) by the producer, so big images are not
 * written to the append-only file and the replicas twice.
 */
export const NOTICE_RESULT_MAX_BYTES: number = 16 * 1024;

/**
 * Stores each job's final state once — only while the job is pending — and acknowledges
 * and deletes its stream entry, appends one ledger entry for every job the call stored
 * and records their service times, all in one step: the acknowledgement never outlives
 * the result, and the ledger entry is exactly as durable as the result. (Producers are
 * told after the `WAIT`, so a waiter is never told of a result that a failover could
 * still take back.)
 *
 * Prefetch: a consumer that finishes a job asks for its next one at once, so the call
 * may also claim up to ARGV 6 new entries for consumer ARGV 7 (`XREADGROUP … COUNT n`
 * without blocking, as the consumer's own read would): the finishing consumers' next
 * jobs come back with the answer, and their process makes no read of its own while the
 * stream has entries. A claim is a delivery like any other (pending under the consumer,
 * reclaimed if it dies); it needs no `WAIT`, as a read needs none.
 *
 * Notices: a stored job whose producer waits in another process gets its notice pushed
 * onto that producer's inbox list here, in the same step (one `RPUSH` per inbox and
 * call, carrying the result when it is at most {@link NOTICE_RESULT_MAX_BYTES}), rather
 * than by a command of its own after the `WAIT`: the producer confirms with a `WAIT` of
 * its own, behind its `BLMPOP`, before it believes a notice (see `RedisQueue`), so no
 * waiter hears of a result a failover could still take back. An inbox the call creates
 * (or one ARGV flags) gets a lifetime of 70 s, so a producer that died leaves nothing.
 *
 * KEYS: stream, ledger, service, then one job key per job, then the inboxes notified.
 * ARGV: 1 group, 2 default result ttl, 3 half-life ms, 4 ledger retention ms, 5 ring
 * size, 6 entries to claim (0: none), 7 the consumer claiming them, 8 the number of
 * jobs; then per job six values: entry id ('' from cancel: the job's own entry is
 * deleted instead, so no consumer receives it), final value, ledger record (JSON; a
 * cancel's gets the tenant from the pending state here), service ms ('' when the job
 * did not run), the inbox to notify (its place among the inbox keys, from 1; 0: none),
 * the notice's head (`<id length>:<id>`); then per inbox '1' to renew its lifetime, ''
 * not to. The ledger entry holds one `r` field per stored job.
 * Returns `{stored, claimed}`: per job 1 when this call stored its final state, 0 when
 * one was there already; the claimed entries as `XREADGROUP` gives them (`{id, fields}`).
 */
export const FINISH: string = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local samples = {}
local acks = {}
local gone = {}
local ledger = {KEYS[2], 'MINID', '~', now - tonumber(ARGV[4]), '*'}
local head = #ledger
local n = tonumber(ARGV[8])
local notices = {}
for i = 4, 3 + n do
  local b = 9 + (i - 4) * 6
  local key = KEYS[i]
  local v = redis.call('GET', key)
  local stored = 0
  if v and string.byte(v, 1) == 112 then
    local entry, ttl, tenant = string.match(v, '^p\\n([^\\n]*)\\n([^\\n]*)\\n(.*)$')
    if not ttl or ttl == '' then ttl = ARGV[2] end
    redis.call('SET', key, ARGV[b + 1], 'PX', ttl)
    local record = ARGV[b + 2]
    if ARGV[b] == '' then
      if tenant and tenant ~= '' then record = '{"tenant":' .. cjson.encode(tenant) .. ',' .. string.sub(record, 2) end
      if entry and entry ~= '' then gone[#gone + 1] = entry end
    end
    ledger[#ledger + 1] = 'r'
    ledger[#ledger + 1] = record
    if ARGV[b + 3] ~= '' then samples[#samples + 1] = tonumber(ARGV[b + 3]) end
    local box = tonumber(ARGV[b + 4])
    if box > 0 then
      local notice = ARGV[b + 5]
      if #ARGV[b + 1] <= ${NOTICE_RESULT_MAX_BYTES} then notice = notice .. ARGV[b + 1] end
      local list = notices[box]
      if not list then
        list = {}
        notices[box] = list
      end
      list[#list + 1] = notice
    end
    stored = 1
  end
  if ARGV[b] ~= '' then
    acks[#acks + 1] = ARGV[b]
    gone[#gone + 1] = ARGV[b]
  end
  out[i - 3] = stored
end
if #acks > 0 then redis.call('XACK', KEYS[1], ARGV[1], unpack(acks)) end
if #gone > 0 then redis.call('XDEL', KEYS[1], unpack(gone)) end
if #ledger > head then redis.call('XADD', unpack(ledger)) end
for box = 1, #KEYS - 3 - n do
  local inbox = KEYS[3 + n + box]
  local list = notices[box]
  local created = false
  if list then created = redis.call('RPUSH', inbox, unpack(list)) == #list end
  if created or ARGV[8 + n * 6 + box] == '1' then redis.call('PEXPIRE', inbox, 70000) end
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
local claimed = {}
if tonumber(ARGV[6]) > 0 then
  local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[7], 'COUNT', ARGV[6], 'STREAMS', KEYS[1], '>')
  if r then claimed = r[1][2] end
end
return {out, claimed}`;
