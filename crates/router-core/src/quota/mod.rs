//! Quotas: the account's (requests per minute and per UTC day counted locally, and a
//! block until a reset time when upstream says the account is limited) and each
//! declared provider's (its own limits on its own day clock, its token budgets, and a
//! host breaker).
//!
//! Pure data plus the rules that change it; every method takes `now`. The counts live
//! in [`HealthState`](crate::HealthState) so that one store persists them with the
//! cooldowns. Read in this order: `clock`, `account`, `tokens`, `provider`, `shared`.

mod clock;

mod account;

mod tokens;

mod provider;

mod shared;

pub use account::{
    AccountBlock, DEFAULT_PER_DAY, DEFAULT_PER_MINUTE, DaySource, PAID_ACCOUNT_PER_DAY, QuotaBlock, QuotaPolicy,
    QuotaReport, QuotaScope, QuotaState, UpstreamDay, Window,
};
pub use clock::{ResetClock, UtcDays};
pub use provider::{
    DEFAULT_HOST_BREAKER_OPEN, DEFAULT_HOST_BREAKER_THRESHOLD, DEFAULT_PROVIDER_AUTH_BLOCK, NotFreeMark, ProviderBlock,
    ProviderPolicy, ProviderState,
};
pub use tokens::{Room, TokenPolicy, TokenState};
