//! The reservation, atomic in Redis: one Lua script, one round trip.

use router_core::shared::{ReserveOutcome, SharedError, upstream_block};
use router_core::{QuotaBlock, QuotaScope, Timestamp};
use serde::{Deserialize, Serialize};

/// KEYS: minute counter, day counter, account block, probe claim, the instances' own day
/// counts (a hash), the attempt ids of this instance counted today (a bitmap).
/// ARGV: minute limit, day limit (-1: none), minute TTL, day TTL (ms), probe owner (''
/// for no probe), probe TTL (ms), minute and day counts the store last acknowledged to the
/// instance, instance id, its own acknowledged day count, '1' to count a request ('0' to
/// merge only), the attempt's id, the number of backlog batches, then each batch's id,
/// minute count and day count.
///
/// In order: a lost day counter is rebuilt (the instance's own count restored, the day
/// raised to the sum of every instance's and to what this one last saw); each batch not
/// counted yet is counted (its bit in the bitmap, `SETBIT`, says so: a batch counts once
/// however often it arrives); then, for a reservation, the block, the limits and the
/// probe are checked and the attempt counted, once under its id (a later message may have
/// brought it from the backlog first).
///
/// The answer is one line: `ok M D`, `minute M D`, `day M D`, `blocked JSON` or `probe`;
/// ` rebuilt` follows the counts when the day counter was found lost.
pub(crate) const RESERVE: &str = r"
local mlim, dlim = tonumber(ARGV[1]), tonumber(ARGV[2])
local mttl, dttl = ARGV[3], ARGV[4]
local me, own = ARGV[9], tonumber(ARGV[10])
local function get(key)
  return tonumber(redis.call('GET', key) or '0')
end
local function raise(key, to, ttl)
  if get(key) < to then
    redis.call('SET', key, to, 'PX', ttl)
  end
end
local lost = redis.call('EXISTS', KEYS[2]) == 0
  and (tonumber(ARGV[8]) > 0 or own > 0 or redis.call('EXISTS', KEYS[5]) == 1)
if tonumber(redis.call('HGET', KEYS[5], me) or '0') < own then
  redis.call('HSET', KEYS[5], me, own)
end
local sum = 0
for _, v in ipairs(redis.call('HVALS', KEYS[5])) do
  sum = sum + tonumber(v)
end
raise(KEYS[1], tonumber(ARGV[7]), mttl)
raise(KEYS[2], math.max(sum, tonumber(ARGV[8])), dttl)
for i = 0, tonumber(ARGV[13]) - 1 do
  local id, bm, bd = ARGV[14 + 3 * i], tonumber(ARGV[15 + 3 * i]), tonumber(ARGV[16 + 3 * i])
  if redis.call('SETBIT', KEYS[6], id, 1) == 0 then
    if bm > 0 then
      redis.call('INCRBY', KEYS[1], bm)
      redis.call('PEXPIRE', KEYS[1], mttl)
    end
    if bd > 0 then
      redis.call('INCRBY', KEYS[2], bd)
      redis.call('PEXPIRE', KEYS[2], dttl)
      redis.call('HINCRBY', KEYS[5], me, bd)
    end
  end
end
redis.call('PEXPIRE', KEYS[5], dttl)
redis.call('PEXPIRE', KEYS[6], dttl)
local function counts()
  local tail = ''
  if lost then
    tail = ' rebuilt'
  end
  return get(KEYS[1]) .. ' ' .. get(KEYS[2]) .. tail
end
if ARGV[11] ~= '1' then
  return 'ok ' .. counts()
end
local block = redis.call('GET', KEYS[3])
if block then
  return 'blocked ' .. block
end
if dlim >= 0 and get(KEYS[2]) >= dlim then
  return 'day ' .. counts()
end
if mlim >= 0 and get(KEYS[1]) >= mlim then
  return 'minute ' .. counts()
end
if ARGV[5] ~= '' then
  if not redis.call('SET', KEYS[4], ARGV[5], 'NX', 'PX', ARGV[6]) then
    return 'probe'
  end
end
if redis.call('SETBIT', KEYS[6], ARGV[12], 1) == 0 then
  redis.call('INCR', KEYS[1])
  redis.call('PEXPIRE', KEYS[1], mttl)
  redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], dttl)
  redis.call('HINCRBY', KEYS[5], me, 1)
  redis.call('PEXPIRE', KEYS[5], dttl)
  redis.call('PEXPIRE', KEYS[6], dttl)
end
return 'ok ' .. counts()
";

/// The account block as kept in Redis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredBlock {
    pub(crate) until: Timestamp,
    pub(crate) reason: String,
}

/// Whether the script found the day counter lost (and rebuilt it).
pub(crate) fn rebuilt(answer: &str) -> bool {
    answer.ends_with(" rebuilt")
}

/// Reads the script's answer.
pub(crate) fn parse(
    answer: &str,
    limits: (Option<u32>, Option<u32>),
    now: Timestamp,
) -> Result<ReserveOutcome, SharedError> {
    let bad = || SharedError::Protocol(answer.chars().take(80).collect());
    let (word, rest) = answer.split_once(' ').unwrap_or((answer, ""));
    let counts = || -> Result<(u32, u32), SharedError> {
        let mut words = rest.split(' ');
        let mut next = || words.next().and_then(|w| w.parse().ok()).ok_or_else(bad);
        Ok((next()?, next()?))
    };
    match word {
        "ok" => counts().map(|(minute, day)| ReserveOutcome::Reserved { minute, day }),
        "minute" => {
            let c = counts()?;
            let block =
                QuotaBlock { scope: QuotaScope::Minute { limit: limits.0.unwrap_or(0) }, until: now.next_minute() };
            Ok(ReserveOutcome::Blocked(block, Some(c)))
        }
        "day" => {
            let c = counts()?;
            let block =
                QuotaBlock { scope: QuotaScope::Day { limit: limits.1.unwrap_or(0) }, until: now.next_utc_midnight() };
            Ok(ReserveOutcome::Blocked(block, Some(c)))
        }
        "blocked" => {
            let b: StoredBlock = serde_json::from_str(rest).map_err(|_| bad())?;
            Ok(ReserveOutcome::Blocked(upstream_block(b.until, b.reason), None))
        }
        "probe" => Ok(ReserveOutcome::ProbeTaken),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse() {
        let now = Timestamp::from_secs(1_800_000_000);
        let limits = (Some(20), Some(50));
        assert_eq!(parse("ok 3 40", limits, now), Ok(ReserveOutcome::Reserved { minute: 3, day: 40 }));
        assert!(matches!(
            parse("day 1 50", limits, now),
            Ok(ReserveOutcome::Blocked(QuotaBlock { scope: QuotaScope::Day { limit: 50 }, .. }, Some((1, 50))))
        ));
        let json = serde_json::to_string(&StoredBlock { until: now, reason: "cap".into() }).expect("json");
        assert!(matches!(
            parse(&format!("blocked {json}"), limits, now),
            Ok(ReserveOutcome::Blocked(QuotaBlock { scope: QuotaScope::Upstream { .. }, .. }, None))
        ));
        assert_eq!(parse("probe", limits, now), Ok(ReserveOutcome::ProbeTaken));
        assert_eq!(parse("ok 3 40 rebuilt", limits, now), Ok(ReserveOutcome::Reserved { minute: 3, day: 40 }));
        assert!(rebuilt("ok 3 40 rebuilt") && !rebuilt("ok 3 40"));
        assert!(parse("ok x", limits, now).is_err());
        assert!(parse("what", limits, now).is_err());
    }
}
