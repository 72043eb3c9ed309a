//! A declared provider's budgets in Redis: one script counts an attempt against every
//! budget it spends (request quotas and token budgets, the provider's and the model's
//! own) at once, or against none when one cannot take it; a second corrects a token
//! charge from the answer's `usage`, sent in the background.
//!
//! Keys: `tokens:{name}:m:{minute}` and `tokens:{name}:d:{day}` (the day on the budget's
//! own clock), `requests:{name}:…` likewise, each expiring a little after its window.

use super::inner::Inner;
use crate::keys::{day_ttl_to, minute_ttl};
use redis::aio::ConnectionManager;
use router_core::Timestamp;
use router_core::shared::{BudgetUnit, SharedBudget, SharedError, TokenCorrection, TokenOutcome, TokenReserve};
use std::sync::LazyLock;
use std::time::Duration;

static RESERVE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(RESERVE_TOKENS));
static CORRECT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(CORRECT_TOKENS));

/// KEYS: each budget's minute and day counters, in turn. ARGV: for each budget what the
/// attempt counts in it (its tokens, or one request), its minute limit, day limit (-1:
/// none), minute TTL and day TTL (ms).
///
/// Checks every budget first and counts in all only when all can take the attempt. The
/// answer is `ok` followed by each budget's minute and day counts, or `full I m|d LEFT`.
pub(crate) const RESERVE_TOKENS: &str = r"
local budgets = #KEYS / 2
for i = 1, budgets do
  local base = 1 + 5 * (i - 1)
  local n = tonumber(ARGV[base])
  local m = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local d = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  local mlim, dlim = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  if mlim >= 0 and m + n > mlim then
    return 'full ' .. (i - 1) .. ' m ' .. math.max(mlim - m, 0)
  end
  if dlim >= 0 and d + n > dlim then
    return 'full ' .. (i - 1) .. ' d ' .. math.max(dlim - d, 0)
  end
end
local out = 'ok'
for i = 1, budgets do
  local base = 1 + 5 * (i - 1)
  local n = tonumber(ARGV[base])
  local m = redis.call('INCRBY', KEYS[2 * i - 1], n)
  redis.call('PEXPIRE', KEYS[2 * i - 1], ARGV[base + 3])
  local d = redis.call('INCRBY', KEYS[2 * i], n)
  redis.call('PEXPIRE', KEYS[2 * i], ARGV[base + 4])
  out = out .. ' ' .. m .. ' ' .. d
end
return out
";

/// KEYS: each budget's minute and day counters of the charge's windows. ARGV: what to add
/// (negative to give back), '1' to correct the minutes, '1' to correct the days. A counter
/// gone (its window over) is left gone; none goes below zero.
pub(crate) const CORRECT_TOKENS: &str = r"
local delta = tonumber(ARGV[1])
for i = 1, #KEYS do
  local on = ARGV[2]
  if i % 2 == 0 then
    on = ARGV[3]
  end
  if on == '1' and redis.call('EXISTS', KEYS[i]) == 1 then
    if redis.call('INCRBY', KEYS[i], delta) < 0 then
      redis.call('SET', KEYS[i], 0, 'KEEPTTL')
    end
  end
end
return 'ok'
";

/// How long a correction may take before it is given up (the charge then stands).
const CORRECTION_TIMEOUT: Duration = Duration::from_secs(1);

impl Inner {
    fn token_keys(&self, budgets: &[SharedBudget], at: Timestamp) -> Vec<String> {
        budgets
            .iter()
            .flat_map(|b| [self.keys.budget_minute(b.unit, &b.name, at), self.keys.budget_day(b.unit, &b.name, b.day)])
            .collect()
    }

    /// Runs the reservation script within `bound`.
    pub(super) async fn run_tokens(
        &self,
        conn: &mut ConnectionManager,
        request: &TokenReserve,
        bound: Duration,
    ) -> Result<TokenOutcome, SharedError> {
        let now = request.now;
        let limit = |l: Option<u64>| l.and_then(|l| i64::try_from(l).ok()).unwrap_or(-1);
        let mut invocation = RESERVE.prepare_invoke();
        for key in self.token_keys(&request.budgets, now) {
            invocation.key(key);
        }
        for b in &request.budgets {
            let amount = match b.unit {
                BudgetUnit::Tokens => request.tokens,
                BudgetUnit::Requests => 1,
            };
            invocation
                .arg(amount)
                .arg(limit(b.per_minute))
                .arg(limit(b.per_day))
                .arg(minute_ttl(now))
                .arg(day_ttl_to(now, b.day_ends));
        }
        match tokio::time::timeout(bound, invocation.invoke_async::<String>(conn)).await {
            Ok(Ok(answer)) => parse(&answer, request.budgets.len()),
            Ok(Err(e)) => Err(self.script_failed(&e)),
            Err(_) => Err(SharedError::Timeout(bound)),
        }
    }

    /// Applies a correction (in the background: nothing waits for it).
    pub(super) async fn run_correction(&self, conn: &mut ConnectionManager, c: &TokenCorrection) {
        let delta =
            i64::try_from(c.used).unwrap_or(i64::MAX).saturating_sub(i64::try_from(c.charged).unwrap_or(i64::MAX));
        if delta == 0 || !(c.minute || c.day) {
            return;
        }
        let mut invocation = CORRECT.prepare_invoke();
        for key in self.token_keys(&c.budgets, c.at) {
            invocation.key(key);
        }
        invocation.arg(delta).arg(if c.minute { "1" } else { "0" }).arg(if c.day { "1" } else { "0" });
        let _ = tokio::time::timeout(CORRECTION_TIMEOUT, invocation.invoke_async::<String>(conn)).await;
    }
}

/// Reads the reservation script's answer for `budgets` budgets.
fn parse(answer: &str, budgets: usize) -> Result<TokenOutcome, SharedError> {
    let bad = || SharedError::Protocol(answer.chars().take(80).collect());
    let mut words = answer.split(' ');
    match words.next() {
        Some("ok") => {
            let numbers: Vec<u64> = words.map(|w| w.parse().map_err(|_| bad())).collect::<Result<_, _>>()?;
            if numbers.len() != 2 * budgets {
                return Err(bad());
            }
            Ok(TokenOutcome::Reserved(numbers.chunks(2).map(|c| (c[0], c[1])).collect()))
        }
        Some("full") => {
            let budget = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
            let day = match words.next() {
                Some("m") => false,
                Some("d") => true,
                _ => return Err(bad()),
            };
            let left = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
            Ok(TokenOutcome::Full { budget, day, left })
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse() {
        assert_eq!(parse("ok 10 20 3 4", 2), Ok(TokenOutcome::Reserved(vec![(10, 20), (3, 4)])));
        assert_eq!(parse("full 1 d 7", 2), Ok(TokenOutcome::Full { budget: 1, day: true, left: 7 }));
        assert_eq!(parse("full 0 m 0", 1), Ok(TokenOutcome::Full { budget: 0, day: false, left: 0 }));
        assert!(parse("ok 10", 1).is_err());
        assert!(parse("full 0 x 1", 1).is_err());
        assert!(parse("what", 1).is_err());
    }
}
