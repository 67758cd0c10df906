//! Integrity: applied revisions whose component changed or disappeared since they ran
//! (from the ledger's SHA-256s), and a sum file over the components directory, in the
//! spirit of Atlas's `atlas.sum`, so that CI sees unreviewed additions and edits.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::migrate::History;
use crate::revision::sha256_hex;

/// The sum file's name, in the components directory.
pub const SUM_FILE: &str = "retort.sum";

/// Something that does not match what was applied or recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum Problem {
    /// An applied revision's component has another digest than when it ran.
    Modified {
        /// The revision.
        revision: String,
        /// The SHA-256 the ledger recorded when it ran.
        applied: String,
        /// The SHA-256 of its component now.
        now: String,
    },
    /// An applied revision has no component any more.
    Missing {
        /// The revision.
        revision: String,
    },
    /// A file the sum file does not list.
    Unlisted {
        /// The file, relative to the components directory.
        file: String,
    },
    /// A file whose digest differs from the sum file's.
    Edited {
        /// The file, relative to the components directory.
        file: String,
    },
    /// A file the sum file lists that is gone.
    Removed {
        /// The file, relative to the components directory.
        file: String,
    },
    /// The sum file is missing or its own checksum is wrong.
    BadSumFile {
        /// What is wrong with it.
        reason: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Modified {
                revision,
                applied,
                now,
            } => write!(
                f,
                "revision {revision} was applied from a component with SHA-256 {applied}; the file now has {now}"
            ),
            Problem::Missing { revision } => write!(
                f,
                "revision {revision} is applied but its component is gone"
            ),
            Problem::Unlisted { file } => {
                write!(f, "{file} is not in {SUM_FILE} (new and unreviewed?)")
            }
            Problem::Edited { file } => write!(f, "{file} differs from its digest in {SUM_FILE}"),
            Problem::Removed { file } => write!(f, "{file} is in {SUM_FILE} but gone"),
            Problem::BadSumFile { reason } => write!(f, "{SUM_FILE}: {reason}"),
        }
    }
}

/// Applied revisions (revision -> digest when applied) against the components now.
pub fn check_applied(history: &History, applied: &BTreeMap<String, String>) -> Vec<Problem> {
    applied
        .iter()
        .filter_map(|(revision, digest)| match history.revisions.get(revision) {
            None => Some(Problem::Missing {
                revision: revision.clone(),
            }),
            Some(rev) if !digest.is_empty() && &rev.sha256 != digest => Some(Problem::Modified {
                revision: revision.clone(),
                applied: digest.clone(),
                now: rev.sha256.clone(),
            }),
            Some(_) => None,
        })
        .collect()
}

/// Every component file of the directory and its digest, sorted by name.
fn digests(dir: &Path) -> std::io::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") {
            let name = path
                .file_name()
                .expect("a file")
                .to_string_lossy()
                .into_owned();
            out.insert(name, sha256_hex(&std::fs::read(&path)?));
        }
    }
    Ok(out)
}

/// The sum file for a directory: a checksum of the listing, then `digest  file` lines.
pub fn render_sum(dir: &Path) -> std::io::Result<String> {
    let body: String = digests(dir)?
        .iter()
        .map(|(file, digest)| format!("{digest}  {file}\n"))
        .collect();
    Ok(format!("h1:{}\n{body}", sha256_hex(body.as_bytes())))
}

/// Writes the sum file.
pub fn write_sum(dir: &Path) -> std::io::Result<()> {
    std::fs::write(dir.join(SUM_FILE), render_sum(dir)?)
}

/// Compares the directory with its sum file.
pub fn check_sum(dir: &Path) -> std::io::Result<Vec<Problem>> {
    let text = match std::fs::read_to_string(dir.join(SUM_FILE)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(vec![Problem::BadSumFile {
                reason: "missing: create it with `retort sum`".into(),
            }]);
        }
        Err(e) => return Err(e),
    };
    let (head, body) = text.split_once('\n').unwrap_or((&text, ""));
    let mut problems = Vec::new();
    if head.strip_prefix("h1:") != Some(sha256_hex(body.as_bytes()).as_str()) {
        problems.push(Problem::BadSumFile {
            reason: "its checksum does not match its lines (edited by hand?)".into(),
        });
    }
    let listed: BTreeMap<String, String> = body
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(digest, file)| (file.to_owned(), digest.to_owned()))
        .collect();
    let now = digests(dir)?;
    for (file, digest) in &now {
        match listed.get(file) {
            None => problems.push(Problem::Unlisted { file: file.clone() }),
            Some(d) if d != digest => problems.push(Problem::Edited { file: file.clone() }),
            Some(_) => {}
        }
    }
    for file in listed.keys().filter(|f| !now.contains_key(*f)) {
        problems.push(Problem::Removed { file: file.clone() });
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_file_sees_additions_edits_and_removals() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.wasm"), b"one").unwrap();
        std::fs::write(dir.path().join("b.wasm"), b"two").unwrap();
        assert!(matches!(
            check_sum(dir.path()).unwrap()[..],
            [Problem::BadSumFile { .. }]
        ));
        write_sum(dir.path()).unwrap();
        assert_eq!(check_sum(dir.path()).unwrap(), []);
        std::fs::write(dir.path().join("a.wasm"), b"changed").unwrap();
        std::fs::write(dir.path().join("c.wasm"), b"new").unwrap();
        std::fs::remove_file(dir.path().join("b.wasm")).unwrap();
        assert_eq!(
            check_sum(dir.path()).unwrap(),
            [
                Problem::Edited {
                    file: "a.wasm".into()
                },
                Problem::Unlisted {
                    file: "c.wasm".into()
                },
                Problem::Removed {
                    file: "b.wasm".into()
                },
            ]
        );
        // Editing the sum file to hide a change breaks its own checksum.
        write_sum(dir.path()).unwrap();
        let sum = dir.path().join(SUM_FILE);
        let text = std::fs::read_to_string(&sum)
            .unwrap()
            .replace("c.wasm", "d.wasm");
        std::fs::write(&sum, text).unwrap();
        let problems = check_sum(dir.path()).unwrap();
        assert!(
            matches!(problems[0], Problem::BadSumFile { .. }),
            "{problems:?}"
        );
    }
}
