//! A cache of compiled components, keyed by the component's SHA-256 and the engine's
//! compatibility hash.
//!
//! Deserializing a compiled artifact trusts it completely, so an entry is used only when
//! it carries a valid HMAC-SHA256 made with this cache's own random key: a corrupt entry,
//! one made for another component, or one copied in from elsewhere is ignored and
//! rebuilt. The key lives in the cache directory (mode 0600); the cache defends against
//! corruption and foreign files, not against someone who can already write as this user.
//!
//! Beside the whole-component entries, [`FunctionCache`] keeps Cranelift's compiled
//! functions (wasmtime's incremental compilation cache), so that a component sharing
//! code with one compiled before (the interpreter inside every Python or JavaScript
//! revision) compiles only what is new. Its entries are machine code too, and carry the
//! same HMAC.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;
const TAG_LEN: usize = 32;
const KEY_FILE: &str = "key";

/// A cache directory for one engine configuration.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    key: [u8; 32],
}

impl Cache {
    /// Opens (creating when needed) the cache under `root` for `engine`.
    pub fn open(root: &Path, engine: &wasmtime::Engine) -> std::io::Result<Cache> {
        std::fs::create_dir_all(root)?;
        let key = load_or_create_key(&root.join(KEY_FILE))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let dir = root.join(format!("{:016x}", hasher.finish()));
        std::fs::create_dir_all(&dir)?;
        Ok(Cache { dir, key })
    }

    fn entry(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.cwasm"))
    }

    fn tag(&self, sha256: &str, artifact: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("any key length works");
        mac.update(sha256.as_bytes());
        mac.update(artifact);
        mac.finalize().into_bytes().into()
    }

    /// Whether an entry exists for this digest (not verified: see [`Cache::get`]).
    pub fn has(&self, sha256: &str) -> bool {
        self.entry(sha256).is_file()
    }

    /// The compiled artifact for the component with this digest, if a valid entry exists.
    pub fn get(&self, sha256: &str) -> Option<Vec<u8>> {
        let mut bytes = std::fs::read(self.entry(sha256)).ok()?;
        if bytes.len() < TAG_LEN {
            return None;
        }
        let tag = bytes.split_off(bytes.len() - TAG_LEN);
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("any key length works");
        mac.update(sha256.as_bytes());
        mac.update(&bytes);
        mac.verify_slice(&tag).ok()?;
        Some(bytes)
    }

    /// Stores an artifact; failures only cost a recompile next time, so they are ignored.
    pub fn put(&self, sha256: &str, artifact: &[u8]) {
        let tag = self.tag(sha256, artifact);
        let path = self.entry(sha256);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = std::fs::File::create(&tmp).and_then(|mut f| {
            f.write_all(artifact)?;
            f.write_all(&tag)
        });
        if written.is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        } else {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// Where the entry for this digest lives.
    #[cfg(test)]
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        self.entry(sha256)
    }
}

/// Cranelift's compiled functions, keyed by the hash Cranelift computes over a function's
/// IR, the target and the compiler's version and flags: one append-only log under the
/// cache directory, read once (on the first lookup of a run that compiles) and verified
/// record by record. A record whose HMAC does not verify is ignored (the function is
/// compiled again); a torn tail ends the reading.
///
/// Records are appended with one `write` on a file opened for appending, so processes
/// compiling at once interleave whole records. Some functions get a new key on every
/// compile, so the log grows a little with each; a process that finds it at
/// [`FunctionCache::MAX_LOG_BYTES`] starts it again, and it never grows much beyond.
#[derive(Debug)]
pub struct FunctionCache {
    path: PathBuf,
    key: [u8; 32],
    /// The log as it was when first read.
    loaded: OnceLock<HashMap<Vec<u8>, Vec<u8>>>,
    /// Functions compiled by this process (also appended to the log).
    fresh: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    /// The log, opened for appending on the first insert (`None` once that failed).
    log: Mutex<Option<Option<std::fs::File>>>,
}

const FUNCTION_LOG: &str = "functions.log";
/// Domain separation from whole-component tags.
const FUNCTION_DOMAIN: &[u8] = b"retort function v1\0";

impl FunctionCache {
    /// The size at which the log is started again.
    pub const MAX_LOG_BYTES: u64 = 512 << 20;

    /// Opens (creating the directory and key when needed) the function cache under `root`.
    pub fn open(root: &Path) -> std::io::Result<FunctionCache> {
        std::fs::create_dir_all(root)?;
        let key = load_or_create_key(&root.join(KEY_FILE))?;
        Ok(FunctionCache {
            path: root.join(FUNCTION_LOG),
            key,
            loaded: OnceLock::new(),
            fresh: Mutex::new(HashMap::new()),
            log: Mutex::new(None),
        })
    }

    fn tag(&self, key: &[u8], value: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("any key length works");
        mac.update(FUNCTION_DOMAIN);
        mac.update(&(key.len() as u64).to_le_bytes());
        mac.update(key);
        mac.update(value);
        mac
    }

    /// Every record of the log whose tag verifies.
    fn read_log(&self) -> HashMap<Vec<u8>, Vec<u8>> {
        let mut entries = HashMap::new();
        let Ok(bytes) = std::fs::read(&self.path) else {
            return entries;
        };
        let mut rest = bytes.as_slice();
        while let Some((record, tail)) = split_record(rest) {
            if self
                .tag(record.key, record.value)
                .verify_slice(record.tag)
                .is_ok()
            {
                entries.insert(record.key.to_vec(), record.value.to_vec());
            }
            rest = tail;
        }
        entries
    }

    fn append(&self, key: &[u8], value: &[u8]) -> bool {
        let (Ok(key_len), Ok(value_len)) = (u32::try_from(key.len()), u32::try_from(value.len()))
        else {
            return false;
        };
        let mut record = Vec::with_capacity(8 + key.len() + value.len() + TAG_LEN);
        record.extend_from_slice(&key_len.to_le_bytes());
        record.extend_from_slice(&value_len.to_le_bytes());
        record.extend_from_slice(key);
        record.extend_from_slice(value);
        record.extend_from_slice(&self.tag(key, value).finalize().into_bytes());
        let mut log = self.log.lock().expect("not poisoned");
        let file = log.get_or_insert_with(|| {
            // A full log is started again: what this process compiles is kept.
            if std::fs::metadata(&self.path).is_ok_and(|m| m.len() >= Self::MAX_LOG_BYTES) {
                let _ = std::fs::remove_file(&self.path);
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .ok()
        });
        let Some(file) = file else {
            return false;
        };
        if file
            .metadata()
            .is_ok_and(|m| m.len() >= Self::MAX_LOG_BYTES)
        {
            return false;
        }
        file.write_all(&record).is_ok()
    }
}

/// One record of the function log, borrowed from it.
struct Record<'a> {
    key: &'a [u8],
    value: &'a [u8],
    tag: &'a [u8],
}

/// The first record (key and value lengths as u32 little-endian, key, value, tag) and
/// what follows it; `None` at the end or at a torn record.
fn split_record(bytes: &[u8]) -> Option<(Record<'_>, &[u8])> {
    let key_len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    let value_len = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?) as usize;
    let rest = bytes.get(8..)?;
    let end = key_len.checked_add(value_len)?.checked_add(TAG_LEN)?;
    let record = rest.get(..end)?;
    let (key, record) = record.split_at(key_len);
    let (value, tag) = record.split_at(value_len);
    Some((Record { key, value, tag }, &rest[end..]))
}

impl wasmtime::CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        if let Some(value) = self.loaded.get_or_init(|| self.read_log()).get(key) {
            return Some(Cow::Borrowed(value));
        }
        let fresh = self.fresh.lock().expect("not poisoned");
        fresh.get(key).map(|value| Cow::Owned(value.clone()))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        // Cranelift inserts again what it found but could not reuse; the log holds it.
        let known = |map: &HashMap<Vec<u8>, Vec<u8>>| map.get(key) == Some(&value);
        if self.loaded.get().is_some_and(known) || known(&self.fresh.lock().expect("not poisoned"))
        {
            return true;
        }
        let appended = self.append(key, &value);
        self.fresh
            .lock()
            .expect("not poisoned")
            .insert(key.to_vec(), value);
        appended
    }
}

fn load_or_create_key(path: &Path) -> std::io::Result<[u8; 32]> {
    if let Ok(bytes) = std::fs::read(path)
        && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
    {
        return Ok(key);
    }
    let key: [u8; 32] = rand::random();
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&tmp)?.write_all(&key)?;
    }
    // Another process may have raced us; whichever rename lands last wins, and an entry
    // signed with the losing key is merely recompiled.
    std::fs::rename(&tmp, path)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_verify_and_tampering_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let engine = wasmtime::Engine::default();
        let cache = Cache::open(dir.path(), &engine).unwrap();
        cache.put("abc", b"artifact");
        assert_eq!(cache.get("abc").as_deref(), Some(&b"artifact"[..]));
        // An entry copied under another component's digest is refused.
        std::fs::copy(cache.path_of("abc"), cache.path_of("def")).unwrap();
        assert_eq!(cache.get("def"), None);
        // A corrupted entry is refused.
        let mut bytes = std::fs::read(cache.path_of("abc")).unwrap();
        bytes[0] ^= 1;
        std::fs::write(cache.path_of("abc"), bytes).unwrap();
        assert_eq!(cache.get("abc"), None);
        // A cache with another key refuses the first cache's entries.
        cache.put("abc", b"artifact");
        let other = tempfile::tempdir().unwrap();
        let foreign = Cache::open(other.path(), &engine).unwrap();
        std::fs::copy(cache.path_of("abc"), foreign.path_of("abc")).unwrap();
        assert_eq!(foreign.get("abc"), None);
    }

    #[test]
    fn function_records_verify_and_tampering_is_ignored() {
        use wasmtime::CacheStore;
        let dir = tempfile::tempdir().unwrap();
        let first = FunctionCache::open(dir.path()).unwrap();
        assert!(first.get(b"f1").is_none());
        assert!(first.insert(b"f1", b"code one".to_vec()));
        assert!(first.insert(b"f2", b"code two".to_vec()));
        // The same process finds what it inserted.
        assert_eq!(first.get(b"f1").as_deref(), Some(&b"code one"[..]));
        // A later process finds both in the log.
        let second = FunctionCache::open(dir.path()).unwrap();
        assert_eq!(second.get(b"f2").as_deref(), Some(&b"code two"[..]));
        // A flipped byte in the first record's value: that record is refused, the
        // next one still read.
        let log = dir.path().join(FUNCTION_LOG);
        let mut bytes = std::fs::read(&log).unwrap();
        bytes[8 + 2] ^= 1;
        std::fs::write(&log, &bytes).unwrap();
        let third = FunctionCache::open(dir.path()).unwrap();
        assert!(third.get(b"f1").is_none());
        assert_eq!(third.get(b"f2").as_deref(), Some(&b"code two"[..]));
        // A torn tail ends the reading without losing what came before it.
        bytes[8 + 2] ^= 1;
        bytes.truncate(bytes.len() - 5);
        std::fs::write(&log, &bytes).unwrap();
        let fourth = FunctionCache::open(dir.path()).unwrap();
        assert_eq!(fourth.get(b"f1").as_deref(), Some(&b"code one"[..]));
        assert!(fourth.get(b"f2").is_none());
        // A log written with another key is foreign: nothing in it is used.
        let other = tempfile::tempdir().unwrap();
        std::fs::copy(
            dir.path().join(FUNCTION_LOG),
            other.path().join(FUNCTION_LOG),
        )
        .unwrap();
        let foreign = FunctionCache::open(other.path()).unwrap();
        assert!(foreign.get(b"f1").is_none());
    }
}
