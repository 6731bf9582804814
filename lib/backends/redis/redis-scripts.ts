// The Lua scripts of the Redis backend. Every key of a namespace shares one hash tag, so each
// script touches one slot (Redis Cluster). KEYS[1] is always the namespace's token counter: it
// routes the call; the other keys are derived from ARGV[1], the namespace (`{<prefix>}:`).
//
// Keys, for lock <name> and session <sid>:
//   seq          INCR counter that never expires: fencing tokens and queue order
//   q:<name>     ZSET, member `<kind>|<sid>|<n>`, score = token: the queue
//   m:<name>     HASH, member -> owner record (JSON); `<member>|lease` -> a hard-TTL entry's own key
//   w:<name>     ZSET of unfair waiters (`fair: false`), score = arrival
//   names        SET of lock names with someone queued or waiting
//   s:<sid>      a session, with a PX TTL; its entries are pruned once it is gone
//   sessions     SET of the sessions opened; swept for gone ones
//   e:<sid>      HASH, lock name -> how many entries the session has there (queue and room)
//   swept        set for one session TTL by the heartbeat that swept: one sweep per TTL per namespace
//   l:<member>   a hard-TTL entry's own life, with a PX TTL
//   c:<sid>      the session's channel, JSON: {turn: name, member} (that entry's turn: it looks again; without a
//                member, the first unfair waiter's), {gone: member, key, forced}
//   events       channel of holder changes, JSON, for the watch

/** Helpers every script starts with. */
const COMMON = `
local ns = ARGV[1]
local function kindOf(member) return string.match(member, '^([^|]+)|') end
local function sidOf(member) return string.match(member, '^[^|]+|([^|]+)|') end
local function leaseOf(name, member)
  local own = redis.call('HGET', ns .. 'm:' .. name, member .. '|lease')
  if own then return own end
  return ns .. 's:' .. sidOf(member)
end
-- the entries that hold the lock: the front of its queue (exclusive: the first; shared: the readers
-- before the first writer; semaphore: the first <limit>)
local function holders(name)
  local first = redis.call('ZRANGE', ns .. 'q:' .. name, 0, 0)[1]
  if not first then return {} end
  local kind = kindOf(first)
  if kind == 'x' then return {first} end
  if kind == 'r' then
    local out = {}
    for _, m in ipairs(redis.call('ZRANGE', ns .. 'q:' .. name, 0, -1)) do
      if kindOf(m) ~= 'r' then break end
      out[#out + 1] = m
    end
    return out
  end
  return redis.call('ZRANGE', ns .. 'q:' .. name, 0, tonumber(string.sub(kind, 2)) - 1)
end
-- counts a session's entries per lock name, so a sweep finds the entries of a session that is gone;
-- byOwner: its own process removes it (its session lives, or the sweep will forget it)
local function track(name, member, delta, byOwner)
  if delta == 0 then return end
  local sid = sidOf(member)
  if redis.call('HINCRBY', ns .. 'e:' .. sid, name, delta) > 0 then return end
  redis.call('HDEL', ns .. 'e:' .. sid, name)
  -- the last entry of a session that is gone: nothing is left to sweep
  if not byOwner and redis.call('EXISTS', ns .. 's:' .. sid) == 0 and redis.call('EXISTS', ns .. 'e:' .. sid) == 0 then redis.call('SREM', ns .. 'sessions', sid) end
end
-- takes an entry out of the unfair waiters' room
local function leaveRoom(name, member, byOwner)
  track(name, member, -redis.call('ZREM', ns .. 'w:' .. name, member), byOwner)
  if not redis.call('ZSCORE', ns .. 'q:' .. name, member) then redis.call('HDEL', ns .. 'm:' .. name, member) end
end
local function contains(list, value)
  for _, v in ipairs(list) do if v == value then return true end end
  return false
end
local function event(kind, name, member, reason, score, record)
  score = score or redis.call('ZSCORE', ns .. 'q:' .. name, member)
  record = record or redis.call('HGET', ns .. 'm:' .. name, member) or '{}'
  redis.call('PUBLISH', ns .. 'events', cjson.encode({type = kind, key = name, member = member, token = score, record = record, reason = reason}))
end
-- removes one entry; how: released | forced | expired
local function remove(name, member, how)
  local forced = how == 'forced' and '1' or '0'
  local lease = redis.call('HGET', ns .. 'm:' .. name, member .. '|lease')
  track(name, member, -redis.call('ZREM', ns .. 'q:' .. name, member), how == 'released')
  redis.call('HDEL', ns .. 'm:' .. name, member, member .. '|lease')
  if lease then redis.call('DEL', lease) end
  if how ~= 'released' then redis.call('PUBLISH', ns .. 'c:' .. sidOf(member), cjson.encode({gone = member, key = name, forced = forced == '1'})) end
end
-- tells the entries that now hold (and the first unfair waiter, if the lock may be free) to look again;
-- caller: the entry of the script's own caller, which learns it from the script's answer
local function admitted(name, before, caller)
  for _, m in ipairs(holders(name)) do
    if not contains(before, m) then
      event('acquired', name, m, false)
      if m ~= caller then redis.call('PUBLISH', ns .. 'c:' .. sidOf(m), cjson.encode({turn = name, member = m})) end
    end
  end
  local waiter = redis.call('ZRANGE', ns .. 'w:' .. name, 0, 0)[1]
  if waiter then redis.call('PUBLISH', ns .. 'c:' .. sidOf(waiter), cjson.encode({turn = name}))
  elseif redis.call('EXISTS', ns .. 'q:' .. name) == 0 then redis.call('SREM', ns .. 'names', name) end
end
-- removes holders whose session (or own TTL) is gone, reporting each as expired, until a live one holds
local function prune(name)
  local before = holders(name)
  local removed = false
  local again = true
  while again do
    again = false
    for _, m in ipairs(holders(name)) do
      local lease = leaseOf(name, m)
      if redis.call('EXISTS', lease) == 0 then
        local own = redis.call('HGET', ns .. 'm:' .. name, m .. '|lease')
        event('expired', name, m, own and 'ttl-expired' or 'session-expired')
        remove(name, m, 'expired')
        removed = true
        again = true
      end
    end
  end
  -- unfair waiters of gone sessions leave the room too
  for _, w in ipairs(redis.call('ZRANGE', ns .. 'w:' .. name, 0, 0)) do
    if redis.call('EXISTS', ns .. 's:' .. sidOf(w)) == 0 then leaveRoom(name, w) end
  end
  if removed then admitted(name, before) end
end
-- removes every entry of the lock whose life is gone, wherever it stands in the queue or the room
local function tidy(name)
  local before = holders(name)
  for _, m in ipairs(redis.call('ZRANGE', ns .. 'q:' .. name, 0, -1)) do
    if redis.call('EXISTS', leaseOf(name, m)) == 0 then
      if contains(before, m) then
        local own = redis.call('HGET', ns .. 'm:' .. name, m .. '|lease')
        event('expired', name, m, own and 'ttl-expired' or 'session-expired')
      end
      remove(name, m, 'expired')
    end
  end
  for _, w in ipairs(redis.call('ZRANGE', ns .. 'w:' .. name, 0, -1)) do
    if redis.call('EXISTS', ns .. 's:' .. sidOf(w)) == 0 then leaveRoom(name, w) end
  end
  admitted(name, before)
end
-- the entries of a session whose key is gone; a hard-TTL lock outlives its session, which stays listed until that lock is gone too
local function dropSession(sid)
  for _, name in ipairs(redis.call('HKEYS', ns .. 'e:' .. sid)) do tidy(name) end
  if redis.call('EXISTS', ns .. 'e:' .. sid) == 0 then redis.call('SREM', ns .. 'sessions', sid) end
end
-- the entries of sessions that are gone (a crashed process), in locks nobody may touch again
local function sweep()
  for _, sid in ipairs(redis.call('SMEMBERS', ns .. 'sessions')) do
    if redis.call('EXISTS', ns .. 's:' .. sid) == 0 then dropSession(sid) end
  end
end
local function isHolder(name, member) return contains(holders(name), member) end
-- ms until the first holder's session (or own TTL) would run out: when a waiter looks again without a message
local function holderTtl(name)
  local least = -1
  for _, m in ipairs(holders(name)) do
    local ttl = redis.call('PTTL', leaseOf(name, m))
    if least < 0 or (ttl >= 0 and ttl < least) then least = ttl end
  end
  return least
end
`;

/**
 * Queues an entry and says whether it holds. ARGV: ns, name, member, onlyIfFree ('1'), record.
 * Returns {token, holds (1/0)}; {0} busy (nothing written); {-1} session gone; {-2, kind} a kind
 * that cannot queue with ours is queued.
 */
export const ACQUIRE = `${COMMON}
local name, member, onlyIfFree, record = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local q = ns .. 'q:' .. name
if redis.call('EXISTS', ns .. 's:' .. sidOf(member)) == 0 then return {-1} end
prune(name)
local queue = redis.call('ZRANGE', q, 0, -1)
if #queue == 0 then
  -- nobody queued (the common case): ours holds at once
  local token = redis.call('INCR', KEYS[1])
  redis.call('ZADD', q, token, member)
  track(name, member, 1)
  redis.call('HSET', ns .. 'm:' .. name, member, record)
  redis.call('SADD', ns .. 'names', name)
  event('acquired', name, member, false, token, record)
  return {token, 1}
end
local token = redis.call('ZSCORE', q, member)
if token then
  return {tonumber(token), isHolder(name, member) and 1 or 0}
end
local kind = kindOf(member)
for _, m in ipairs(queue) do
  local other = kindOf(m)
  if (string.sub(other, 1, 1) == 's' or string.sub(kind, 1, 1) == 's') and other ~= kind then return {-2, other} end
end
if onlyIfFree == '1' then
  local free = #queue == 0
  if kind == 'r' then
    free = true
    for _, m in ipairs(queue) do if kindOf(m) ~= 'r' then free = false end end
  elseif string.sub(kind, 1, 1) == 's' then
    free = #queue < tonumber(string.sub(kind, 2))
  end
  if not free then return {0} end
end
local before = holders(name)
token = redis.call('INCR', KEYS[1])
redis.call('ZADD', q, token, member)
track(name, member, 1)
redis.call('HSET', ns .. 'm:' .. name, member, record)
redis.call('SADD', ns .. 'names', name)
admitted(name, before, member)
return {token, isHolder(name, member) and 1 or 0}
`;

/** Where an entry stands. ARGV: ns, name, member. Returns {1} holds, {0, holder ttl} waits, {-1} gone. */
export const PLACE = `${COMMON}
local name, member = ARGV[2], ARGV[3]
prune(name)
if not redis.call('ZSCORE', ns .. 'q:' .. name, member) then return {-1} end
if isHolder(name, member) then return {1} end
return {0, holderTtl(name)}
`;

/**
 * Removes an entry if it is still there. ARGV: ns, name, member, how: 'released', or 'ttl-expired'
 * (a hard-TTL lock past its deadline removes its own entry: reported as expired). Returns 1 if it was there.
 */
export const RELEASE = `${COMMON}
local name, member, how = ARGV[2], ARGV[3], ARGV[4]
local score = redis.call('ZSCORE', ns .. 'q:' .. name, member)
if not score then return 0 end
local before = holders(name)
if contains(before, member) then
  if how == 'ttl-expired' then event('expired', name, member, 'ttl-expired', score) else event('released', name, member, false, score) end
end
remove(name, member, 'released')
admitted(name, before)
return 1
`;

/** Writes an entry's record (when it got the lock). ARGV: ns, name, member, record. Returns 1 if the entry is there. */
export const RECORD = `${COMMON}
local name, member, record = ARGV[2], ARGV[3], ARGV[4]
if not redis.call('ZSCORE', ns .. 'q:' .. name, member) then return 0 end
redis.call('HSET', ns .. 'm:' .. name, member, record)
return 1
`;

/** The holders of a lock removed by an operator (ARGV[4]: only the one with this token, '' for all). ARGV: ns, name, by, token. Returns the members removed and their tokens, in turn. */
export const FORCE = `${COMMON}
local name, by, only = ARGV[2], ARGV[3], ARGV[4]
prune(name)
local before = holders(name)
local removed = {}
for _, m in ipairs(before) do
  local score = redis.call('ZSCORE', ns .. 'q:' .. name, m)
  if only == '' or score == only then
    removed[#removed + 1] = m
    removed[#removed + 1] = score
    local record = cjson.decode(redis.call('HGET', ns .. 'm:' .. name, m) or '{}')
    record.forcedBy = by
    redis.call('HSET', ns .. 'm:' .. name, m, cjson.encode(record))
    event('lost', name, m, 'forced')
    remove(name, m, 'forced')
  end
end
admitted(name, before)
return removed
`;

/**
 * An entry enters (ARGV[4] = 'enter', ARGV[5] its record; returns -1 if its session is gone) or
 * leaves ('leave') the unfair waiters' room. ARGV: ns, name, member.
 */
export const ROOM = `${COMMON}
local name, member, action = ARGV[2], ARGV[3], ARGV[4]
if action == 'enter' then
  if redis.call('EXISTS', ns .. 's:' .. sidOf(member)) == 0 then return -1 end
  redis.call('HSET', ns .. 'm:' .. name, member, ARGV[5])
  if not redis.call('ZSCORE', ns .. 'w:' .. name, member) then
    redis.call('ZADD', ns .. 'w:' .. name, redis.call('INCR', KEYS[1]), member)
    track(name, member, 1)
  end
  redis.call('SADD', ns .. 'names', name)
  return redis.call('ZRANK', ns .. 'w:' .. name, member)
end
leaveRoom(name, member, true)
local first = redis.call('ZRANGE', ns .. 'w:' .. name, 0, 0)[1]
if first then redis.call('PUBLISH', ns .. 'c:' .. sidOf(first), cjson.encode({turn = name})) end
if redis.call('EXISTS', ns .. 'q:' .. name) == 0 and redis.call('EXISTS', ns .. 'w:' .. name) == 0 then redis.call('SREM', ns .. 'names', name) end
return 0
`;

/** A hard-TTL entry gets (or renews) a life of its own. ARGV: ns, name, member, lease key, ttl ms, renew ('1': only if already its own). */
export const OWN_LEASE = `${COMMON}
local name, member, lease, ttl, renew = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if not redis.call('ZSCORE', ns .. 'q:' .. name, member) then return 0 end
if renew == '1' and redis.call('HGET', ns .. 'm:' .. name, member .. '|lease') ~= lease then return 0 end
redis.call('SET', lease, '1', 'PX', ttl)
redis.call('HSET', ns .. 'm:' .. name, member .. '|lease', lease)
return 1
`;

/**
 * Keeps a session alive and, once per TTL across the namespace, sweeps the entries of sessions
 * that are gone. ARGV: ns, sid, ttl ms. Returns 0 if the session is gone.
 */
export const HEARTBEAT = `${COMMON}
local alive = redis.call('PEXPIRE', ns .. 's:' .. ARGV[2], ARGV[3])
if redis.call('SET', ns .. 'swept', '1', 'NX', 'PX', ARGV[3]) then sweep() end
return alive
`;

/**
 * Ends a session (closed, or expired as its process saw it): its key goes, and so do the entries
 * it still has (a lost lock's, reported expired to watchers). ARGV: ns, sid.
 */
export const END_SESSION = `${COMMON}
redis.call('DEL', ns .. 's:' .. ARGV[2])
dropSession(ARGV[2])
return 1
`;

/** Removes what gone sessions left: in one lock (ARGV: ns, name), or in all (ARGV: ns). Returns 1. */
export const TIDY = `${COMMON}
if ARGV[2] then tidy(ARGV[2]) else sweep() end
return 1
`;
