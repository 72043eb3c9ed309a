//! The reservation, atomic in Redis: one Lua script, one round trip.

use router_core::shared::{ReserveOutcome, SharedError, upstream_block};
use router_core::{QuotaBlock, QuotaScope, Timestamp};
use serde::{Deserialize, Serialize};

/// KEYS: minute counter, day counter, account block, probe claim.
/// ARGV: minute limit, day limit (-1: none), minute TTL, day TTL (ms), minute backlog,
/// day backlog, probe owner ('' for no probe), probe TTL (ms), minute and day counts
/// the instance knows (a counter below them lost its data: it is raised to them, which
/// already include the backlog).
///
/// The answer is one line: `ok M D`, `minute M D`, `day M D`, `blocked JSON` or `probe`.
pub(crate) const RESERVE: &str = r"
local mlim, dlim = tonumber(ARGV[1]), tonumber(ARGV[2])
local mback, dback = tonumber(ARGV[5]), tonumber(ARGV[6])
local function merge(key, back, known, ttl)
  if back <= 0 and known <= 0 then
    return
  end
  local c = tonumber(redis.call('GET', key) or '0')
  if c < known then
    redis.call('SET', key, known, 'PX', ttl)
  elseif back > 0 then
    redis.call('INCRBY', key, back)
    redis.call('PEXPIRE', key, ttl)
  end
end
merge(KEYS[1], mback, tonumber(ARGV[9]), ARGV[3])
merge(KEYS[2], dback, tonumber(ARGV[10]), ARGV[4])
local block = redis.call('GET', KEYS[3])
if block then
  return 'blocked ' .. block
end
local m = tonumber(redis.call('GET', KEYS[1]) or '0')
local d = tonumber(redis.call('GET', KEYS[2]) or '0')
if dlim >= 0 and d >= dlim then
  return 'day ' .. m .. ' ' .. d
end
if mlim >= 0 and m >= mlim then
  return 'minute ' .. m .. ' ' .. d
end
if ARGV[7] ~= '' then
  if not redis.call('SET', KEYS[4], ARGV[7], 'NX', 'PX', ARGV[8]) then
    return 'probe'
  end
end
m = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
d = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 'ok ' .. m .. ' ' .. d
";

/// The account block as kept in Redis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredBlock {
    pub(crate) until: Timestamp,
    pub(crate) reason: String,
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
        let (m, d) = rest.split_once(' ').ok_or_else(bad)?;
        Ok((m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?))
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
        assert!(parse("ok x", limits, now).is_err());
        assert!(parse("what", limits, now).is_err());
    }
}
