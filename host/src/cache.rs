//! A cache of compiled components, keyed by the component's SHA-256 and the engine's
//! compatibility hash.
//!
//! Deserializing a compiled artifact trusts it completely, so an entry is used only when
//! it carries a valid HMAC-SHA256 made with this cache's own random key: a corrupt entry,
//! one made for another component, or one copied in from elsewhere is ignored and
//! rebuilt. The key lives in the cache directory (mode 0600); the cache defends against
//! corruption and foreign files, not against someone who can already write as this user.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

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
}
