//! What the handlers share: the router, the catalog handle, metrics, client keys and
//! the source of per-request seeds.

use crate::host::HostCheck;
use crate::metrics::Metrics;
use rand::Rng;
use router_core::select::{SelectionRng, rng_from_seed};
use router_core::{Router, Secret};
use std::sync::{Arc, Mutex, PoisonError};
use subtle::ConstantTimeEq;

/// The handlers' shared state. Cloning is a handful of `Arc` copies.
#[derive(Clone, Debug)]
pub struct AppState {
    pub router: Arc<Router>,
    /// The catalogs the process refreshes, for their counters in `/metrics`, `/readyz`
    /// and the status page; none when the router runs on another `Catalog` (tests,
    /// embedding).
    pub catalogs: Arc<router_settings::Catalogs>,
    pub metrics: Arc<Metrics>,
    pub client_keys: Arc<ClientKeys>,
    pub seeds: Arc<SeedSource>,
    pub max_body_size: usize,
    /// The `Host` values served (see [`HostCheck`]).
    pub hosts: Arc<HostCheck>,
    /// How `/v1/messages` translates what chat has not (Claude ids, server tools).
    pub messages: router_dialects::anthropic::Options,
    /// What `/v1/responses` does with tools the router cannot serve: drop or refuse.
    pub responses_tools: router_dialects::responses::ToolPolicy,
    /// `/v1/embeddings`: the default family and each family's dimension.
    pub embeddings: Arc<EmbeddingsState>,
    /// The one clock of the Messages and Responses streams' keep-alives.
    pub keepalive: crate::KeepaliveClock,
}

impl AppState {
    /// State with no client keys, seeds from entropy and the default body limit.
    pub fn new(router: Arc<Router>) -> Self {
        AppState {
            router,
            catalogs: Arc::default(),
            metrics: Arc::new(Metrics::new()),
            client_keys: Arc::new(ClientKeys::new(Vec::new())),
            seeds: Arc::new(SeedSource::new(None)),
            max_body_size: router_settings::DEFAULT_MAX_BODY_SIZE,
            hosts: Arc::new(HostCheck::default()),
            messages: router_dialects::anthropic::Options::default(),
            responses_tools: router_dialects::responses::ToolPolicy::refusing(
                router_dialects::responses::DEFAULT_REFUSE_UNSERVED_TOOLS,
            ),
            embeddings: Arc::default(),
            keepalive: crate::KeepaliveClock::new(crate::KEEPALIVE_INTERVAL),
        }
    }

    #[must_use]
    pub fn with_catalogs(mut self, catalogs: router_settings::Catalogs) -> Self {
        self.catalogs = Arc::new(catalogs);
        self
    }

    #[must_use]
    pub fn with_client_keys(mut self, keys: Vec<Secret>) -> Self {
        self.client_keys = Arc::new(ClientKeys::new(keys));
        self
    }

    #[must_use]
    pub fn with_seed(mut self, seed: Option<u64>) -> Self {
        self.seeds = Arc::new(SeedSource::new(seed));
        self
    }

    #[must_use]
    pub fn with_hosts(mut self, hosts: HostCheck) -> Self {
        self.hosts = Arc::new(hosts);
        self
    }

    #[must_use]
    pub fn with_max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    #[must_use]
    pub fn with_messages(mut self, options: router_dialects::anthropic::Options) -> Self {
        self.messages = options;
        self
    }

    /// The family `/v1/embeddings` serves when no model is named.
    #[must_use]
    pub fn with_default_embedding_family(mut self, family: Option<String>) -> Self {
        self.embeddings = Arc::new(EmbeddingsState::new(family));
        self
    }

    #[must_use]
    pub fn with_responses_tools(mut self, policy: router_dialects::responses::ToolPolicy) -> Self {
        self.responses_tools = policy;
        self
    }
}

/// What the embeddings endpoints share: the default family (kept here, beside the state
/// that holds it, so that the handlers' modules stay leaves). Each family's dimension is
/// the router's, which holds answers to it in the attempt loop.
#[derive(Debug, Default)]
pub struct EmbeddingsState {
    pub(crate) default_family: Option<String>,
}

impl EmbeddingsState {
    pub fn new(default_family: Option<String>) -> Self {
        EmbeddingsState { default_family: default_family.filter(|f| !f.is_empty()) }
    }
}

/// Draws each request's seed from one generator. Seeded from configuration, the
/// sequence of seeds (hence of picks) repeats for the same sequence of requests;
/// otherwise seeded once from the operating system's entropy.
#[derive(Debug)]
pub struct SeedSource {
    rng: Mutex<SelectionRng>,
}

impl SeedSource {
    pub fn new(seed: Option<u64>) -> Self {
        // Without entropy (a broken sandbox) the time of day still varies between starts.
        let seed = seed.unwrap_or_else(|| getrandom::u64().unwrap_or_else(|_| time_seed()));
        SeedSource { rng: Mutex::new(rng_from_seed(seed)) }
    }

    pub fn next(&self) -> u64 {
        self.rng.lock().unwrap_or_else(PoisonError::into_inner).next_u64()
    }
}

fn time_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The keys clients may present. Compared in constant time, and every key is compared
/// so that the time taken does not say which one was close.
#[derive(Debug)]
pub struct ClientKeys {
    keys: Vec<Secret>,
}

impl ClientKeys {
    pub fn new(keys: Vec<Secret>) -> Self {
        ClientKeys { keys: keys.into_iter().filter(|k| !k.is_empty()).collect() }
    }

    /// Whether clients must authenticate at all.
    pub fn required(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Whether `Authorization: <header>` carries one of the keys.
    pub fn accepts(&self, header: Option<&[u8]>) -> bool {
        self.accepts_token(header.and_then(bearer))
    }

    /// Whether a bare key (Anthropic's `x-api-key: <key>`) is one of the keys.
    pub fn accepts_token(&self, token: Option<&[u8]>) -> bool {
        let Some(token) = token.map(<[u8]>::trim_ascii) else { return false };
        let mut ok = subtle::Choice::from(0);
        for key in &self.keys {
            ok |= key.expose().as_bytes().ct_eq(token);
        }
        ok.into()
    }
}

/// The token of `Bearer <token>` (the scheme is case-insensitive).
fn bearer(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = header.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then(|| rest.trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(keys: &[&str], header: Option<&str>, expected: bool) {
        let k = ClientKeys::new(keys.iter().map(|s| Secret::new(*s)).collect());
        assert_eq!(k.accepts(header.map(str::as_bytes)), expected, "{keys:?} {header:?}");
    }

    #[test]
    fn accepts_only_listed_bearer_keys() {
        check(&["k1", "k2"], Some("Bearer k2"), true);
        check(&["k1", "k2"], Some("bearer k1"), true);
        check(&["k1"], Some("Bearer  k1 "), true);
        check(&["k1"], Some("Bearer k"), false);
        check(&["k1"], Some("Bearer k11"), false);
        check(&["k1"], Some("Basic k1"), false);
        check(&["k1"], Some("k1"), false);
        check(&["k1"], None, false);
        check(&[], Some("Bearer "), false);
    }

    #[test]
    fn accepts_bare_keys_as_x_api_key() {
        let k = ClientKeys::new(vec![Secret::new("k1")]);
        assert!(k.accepts_token(Some(b"k1")));
        assert!(!k.accepts_token(Some(b"k2")));
        assert!(!k.accepts_token(Some(b"Bearer k1")));
        assert!(!k.accepts_token(None));
    }

    #[test]
    fn seeded_sources_repeat() {
        let a: Vec<u64> = {
            let s = SeedSource::new(Some(7));
            (0..4).map(|_| s.next()).collect()
        };
        let s = SeedSource::new(Some(7));
        assert_eq!(a, (0..4).map(|_| s.next()).collect::<Vec<_>>());
        assert_ne!(a[0], a[1]);
        assert_ne!(SeedSource::new(None).next(), SeedSource::new(None).next());
    }
}
