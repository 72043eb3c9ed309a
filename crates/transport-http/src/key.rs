//! The key's account as `GET /key` describes it: the tier and the day's free-model
//! count, which decide the daily cap.

use serde::Deserialize;

/// The key's account, from `GET /key`: whether it is on the free tier decides the daily
/// free-model cap (50 requests a day on the free tier, 1000 once credits were bought).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct KeyInfo {
    #[serde(default)]
    pub label: Option<String>,
    /// Credit limit, `None` for unlimited.
    #[serde(default)]
    pub limit: Option<f64>,
    #[serde(default)]
    pub limit_remaining: Option<f64>,
    #[serde(default)]
    pub usage: Option<f64>,
    /// Absent is read as the free tier: the smaller cap is the safe assumption.
    #[serde(default = "free_tier_default")]
    pub is_free_tier: bool,
    /// Today's free-model requests as upstream counts them (reset at 00:00 UTC; failed
    /// attempts count; about a minute behind). Absent from older answers.
    #[serde(default)]
    pub free_model_daily_requests: Option<FreeModelDailyRequests>,
}

/// `free_model_daily_requests` of `GET /key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct FreeModelDailyRequests {
    pub used: u32,
    pub limit: u32,
    pub remaining: u32,
}

fn free_tier_default() -> bool {
    true
}

impl KeyInfo {
    /// Free-model requests a day this account may make.
    /// Upstream's own `free_model_daily_requests.limit` when it says (the limit depends
    /// on credits bought, not on the tier), else read from the tier.
    pub fn daily_free_requests(&self) -> u32 {
        if let Some(daily) = self.free_model_daily_requests {
            return daily.limit;
        }
        if self.is_free_tier { 50 } else { 1000 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_key_info() {
        let info: KeyInfo = serde_json::from_str(r#"{"is_free_tier":false,"limit":null,"usage":1.5}"#).expect("info");
        assert_eq!(info.daily_free_requests(), 1000);
        let info: KeyInfo = serde_json::from_str(
            r#"{"is_free_tier":true,"free_model_daily_requests":{"used":12,"limit":1000,"remaining":988}}"#,
        )
        .expect("info");
        let daily = FreeModelDailyRequests { used: 12, limit: 1000, remaining: 988 };
        assert_eq!(info.free_model_daily_requests, Some(daily));
        assert_eq!(info.daily_free_requests(), 1000, "upstream's limit, not the tier's");
        let info: KeyInfo = serde_json::from_str(r#"{"label":"x"}"#).expect("info");
        assert_eq!(info.daily_free_requests(), 50);
    }
}
