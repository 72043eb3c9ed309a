//! What the server and its handle share: the scripts, the catalog bodies and the counters
//! a test reads back, behind locks that shrug off a poisoned test thread.

use crate::Recorded;
use crate::behaviour::Behaviour;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) models_body: RwLock<Bytes>,
    pub(crate) models_status: AtomicUsize,
    /// The body of a `/models` answer that is not a 200, when a test chose one.
    pub(crate) models_error_body: RwLock<Option<Bytes>>,
    pub(crate) behaviours: RwLock<HashMap<String, Behaviour>>,
    pub(crate) default_behaviour: RwLock<Behaviour>,
    pub(crate) key_info: RwLock<Bytes>,
    pub(crate) record: AtomicBool,
    pub(crate) requests: Mutex<Vec<Recorded>>,
    pub(crate) calls: Mutex<HashMap<String, usize>>,
    pub(crate) total_calls: AtomicUsize,
    pub(crate) models_fetches: AtomicUsize,
    pub(crate) closed_early: AtomicUsize,
    pub(crate) events_sent: AtomicUsize,
    pub(crate) serial: AtomicU64,
    /// Each embedding model's dimension (`/embeddings`).
    pub(crate) embedding_dims: RwLock<HashMap<String, usize>>,
    /// Each embedding model's most inputs per call, past which it answers as Gemini does.
    pub(crate) embedding_batch_limits: RwLock<HashMap<String, usize>>,
    /// The body of `GET /embeddings/models`.
    pub(crate) embedding_models: RwLock<Bytes>,
    /// Set once by [`FakeUpstream::release_held`](crate::FakeUpstream::release_held): every
    /// [`Behaviour::Held`] request (and any later one) goes on.
    pub(crate) release: tokio::sync::watch::Sender<bool>,
    /// [`Behaviour::Held`] requests waiting now, and the most that ever waited at once.
    pub(crate) held_now: AtomicUsize,
    pub(crate) max_held: AtomicUsize,
}

impl Shared {
    /// A fresh fake: `models` as the catalog, a free-tier key, every model `Ok`.
    pub(crate) fn new(models: Bytes) -> Shared {
        let key = serde_json::json!({"data": {"is_free_tier": true, "limit": null, "usage": 0}}).to_string();
        Shared {
            models_body: RwLock::new(models),
            models_status: AtomicUsize::new(200),
            models_error_body: RwLock::new(None),
            behaviours: RwLock::new(HashMap::new()),
            default_behaviour: RwLock::new(Behaviour::Ok),
            key_info: RwLock::new(Bytes::from(key)),
            record: AtomicBool::new(true),
            requests: Mutex::new(Vec::new()),
            calls: Mutex::new(HashMap::new()),
            total_calls: AtomicUsize::new(0),
            models_fetches: AtomicUsize::new(0),
            closed_early: AtomicUsize::new(0),
            events_sent: AtomicUsize::new(0),
            serial: AtomicU64::new(0),
            embedding_dims: RwLock::new(HashMap::new()),
            embedding_batch_limits: RwLock::new(HashMap::new()),
            embedding_models: RwLock::new(Bytes::from_static(b"{\"data\":[]}")),
            release: tokio::sync::watch::Sender::new(false),
            held_now: AtomicUsize::new(0),
            max_held: AtomicUsize::new(0),
        }
    }

    /// Counts one chat or embeddings call for `model`.
    pub(crate) fn count_call(&self, model: &str) {
        self.total_calls.fetch_add(1, Ordering::Relaxed);
        *lock(&self.calls).entry(model.to_owned()).or_insert(0) += 1;
    }

    /// The script for `model`: its own, else the default.
    pub(crate) fn behaviour_for(&self, model: &str) -> Behaviour {
        read(&self.behaviours).get(model).cloned().unwrap_or_else(|| read(&self.default_behaviour).clone())
    }

    /// Keeps `request` for [`FakeUpstream::requests`](crate::FakeUpstream::requests) while
    /// recording; built only then, so the benchmark copies nothing.
    pub(crate) fn keep_request(&self, request: impl FnOnce() -> Recorded) {
        if self.record.load(Ordering::Relaxed) {
            lock(&self.requests).push(request());
        }
    }
}

pub(crate) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn lock<T>(l: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    l.lock().unwrap_or_else(PoisonError::into_inner)
}
