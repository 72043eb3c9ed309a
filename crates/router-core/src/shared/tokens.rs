//! A declared provider's budgets shared by several instances: what crosses the
//! [`SharedState`](crate::ports::SharedState) port to count an attempt against a
//! provider's (and its model's) request quotas and token budgets atomically, and to
//! correct a token count from the answer's `usage` later. (OpenRouter's account quota
//! has its own script, with a backlog for what was sent while the store was away.)

use crate::time::Timestamp;

/// What a budget counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetUnit {
    /// Tokens: an attempt counts [`TokenReserve::tokens`].
    Tokens,
    /// Requests: an attempt counts one.
    Requests,
}

/// One budget as the shared store counts it: a provider's, or one model's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedBudget {
    /// Whose budget: the provider's name, or the model's exposed id.
    pub name: String,
    /// What it counts.
    pub unit: BudgetUnit,
    /// Units per minute, when limited.
    pub per_minute: Option<u64>,
    /// Units per quota day, when limited.
    pub per_day: Option<u64>,
    /// The quota day's index on the provider's clock (its counter's name).
    pub day: u64,
    /// When that day ends (its counter expires after it).
    pub day_ends: Timestamp,
}

/// Asks the store to count an attempt against every budget at once (`tokens` against a
/// token budget, one against a request quota), or against none when one cannot take it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenReserve {
    /// The budgets the attempt spends: request quotas, then token budgets (each the
    /// provider's, then the model's own).
    pub budgets: Vec<SharedBudget>,
    /// The prompt estimate plus the output asked for (free tiers charge both up front).
    pub tokens: u64,
    /// The instant counted at; it picks the minute.
    pub now: Timestamp,
}

/// The store's answer to a [`TokenReserve`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenOutcome {
    /// Counted: each budget's tokens in the current minute and day, these included, in
    /// the order asked.
    Reserved(Vec<(u64, u64)>),
    /// Not counted: budget `budget` (its index in the request) has only `left` tokens
    /// left in its minute (`day: false`) or its day.
    Full {
        /// The index of the budget that is spent.
        budget: usize,
        /// Whether it is the day's budget (else the minute's).
        day: bool,
        /// What it has left.
        left: u64,
    },
}

/// Corrects a charge made at `at` from the answer's `usage`: `used` tokens were spent
/// where `charged` were counted. Sent in the background; a correction that does not
/// arrive leaves the (conservative) charge standing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenCorrection {
    /// The budgets charged (each `day` is the day of the charge).
    pub budgets: Vec<SharedBudget>,
    /// When they were charged: the minute corrected is this instant's.
    pub at: Timestamp,
    /// Whether the minute of `at` surely held the charge (else only the day is corrected).
    pub minute: bool,
    /// Whether the day of `at` surely held it (else nothing is corrected).
    pub day: bool,
    /// What was counted.
    pub charged: u64,
    /// What the answer says was spent.
    pub used: u64,
}
