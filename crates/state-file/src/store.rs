//! Files written atomically, and the file-backed `StateStore` that keeps the router's
//! resilience state (cooldowns, quota counts, an account block) across restarts.

use router_core::{HealthState, StateStore, StoreError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` so that a reader sees either the old file or the new one,
/// never a torn one: a temporary file in the same directory, flushed to disk, then
/// renamed over `path`. Creates missing parent directories.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // On failure the temporary file is removed when the error drops it.
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The state as JSON in one file, written atomically on every save.
#[derive(Clone, Debug)]
pub struct FileStateStore {
    path: PathBuf,
}

impl FileStateStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStateStore { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl StateStore for FileStateStore {
    /// `Ok(None)` when there is no file yet; an unreadable file is an error, so that a
    /// caller can decide to start afresh knowingly rather than silently.
    fn load(&self) -> Result<Option<HealthState>, StoreError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty())
            && dir.exists()
            && !dir.is_dir()
        {
            return Err(StoreError(format!(
                "the data directory {} is a file, not a directory: point ROUTER_DATA_DIR (--data-dir) at a \
                 directory",
                dir.display()
            )));
        }
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError(format!("cannot read {}: {e}", self.path.display()))),
        };
        let state: HealthState = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError(format!("cannot parse {}: {e}", self.path.display())))?;
        if let Some(lost) = not_understood(&bytes, &state) {
            return Err(StoreError(format!(
                "{} is not a state file of this router (wrong shape: {lost})",
                self.path.display()
            )));
        }
        Ok(Some(state))
    }

    fn save(&self, state: &HealthState) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(state).map_err(|e| StoreError(format!("cannot serialise state: {e}")))?;
        atomic_write(&self.path, &bytes).map_err(|e| StoreError(format!("cannot write {}: {e}", self.path.display())))
    }
}

/// What of the file a state read from it would lose: its top-level members that are
/// not null and do not come back when the state is written again (another program's
/// JSON would otherwise be read as an empty state, and overwritten without a word).
fn not_understood(bytes: &[u8], state: &HealthState) -> Option<String> {
    let file: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let Some(file) = file.as_object() else { return Some("not a JSON object".to_owned()) };
    let again = serde_json::to_value(state).ok()?;
    let lost: Vec<&str> =
        file.iter().filter(|(k, v)| !v.is_null() && again.get(k.as_str()).is_none()).map(|(k, _)| k.as_str()).collect();
    (!lost.is_empty()).then(|| format!("unknown member(s) {}", lost.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use router_core::{ErrorKind, HealthPolicy, ModelId, QuotaPolicy, Timestamp, TransportError};

    fn check(store: &FileStateStore, expected: Option<&HealthState>) {
        assert_eq!(store.load().expect("load").as_ref(), expected);
    }

    #[test]
    fn state_round_trips_through_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FileStateStore::new(dir.path().join("nested").join("state.json"));
        check(&store, None);

        let policy = HealthPolicy::default();
        let now = Timestamp::from_secs(1_800_000_000);
        let mut state = HealthState::default();
        state.reserve(&QuotaPolicy::default(), now).expect("quota");
        let rl = TransportError::new(ErrorKind::RateLimitedModel, "429")
            .with_retry_after(std::time::Duration::from_secs(40));
        state.record_failure(&ModelId::new("acme/a:free"), &rl, &policy, now);
        store.save(&state).expect("save");
        check(&store, Some(&state));
        // A second store on the same file, as after a restart.
        check(&FileStateStore::new(store.path()), Some(&state));

        state.reserve(&QuotaPolicy::default(), now).expect("quota");
        store.save(&state).expect("save again");
        check(&store, Some(&state));
        let leftovers: Vec<_> = std::fs::read_dir(store.path().parent().expect("parent"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(leftovers, [std::ffi::OsString::from("state.json")], "no temporary files are left behind");
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_fresh_state() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"{\"models\": 12").expect("write");
        let err = FileStateStore::new(&path).load().expect_err("corrupt");
        assert!(err.to_string().contains("cannot parse"), "{err}");
    }

    #[test]
    fn a_file_of_another_shape_is_an_error_not_an_empty_state() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.json");
        std::fs::write(&path, br#"{"users": [1, 2], "version": 3}"#).expect("write");
        let err = FileStateStore::new(&path).load().expect_err("wrong shape");
        assert!(err.to_string().contains("wrong shape") && err.to_string().contains("users"), "{err}");
        // An empty object loses nothing: it is an empty state.
        std::fs::write(&path, b"{}").expect("write");
        assert_eq!(FileStateStore::new(&path).load().expect("empty"), Some(HealthState::default()));
        // What the router writes reads back without complaint (round trip tested above).
        FileStateStore::new(&path).save(&HealthState::default()).expect("save");
        assert!(FileStateStore::new(&path).load().is_ok());
    }

    #[test]
    fn a_data_dir_that_is_a_file_says_so_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("data");
        std::fs::write(&file, b"x").expect("write");
        let err = FileStateStore::new(file.join("state.json")).load().expect_err("not a directory");
        let text = err.to_string();
        assert!(text.contains("is a file, not a directory"), "{text}");
        assert_eq!(text.matches(&file.display().to_string()).count(), 1, "{text}");
    }

    #[test]
    fn atomic_write_replaces_whole_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f.json");
        atomic_write(&path, b"first, longer content").expect("write");
        atomic_write(&path, b"second").expect("overwrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"second");
    }
}
