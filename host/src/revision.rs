//! Revision files: a component plus the metadata custom section described in
//! `docs/metadata.md`, read without compiling anything.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmparser::{Encoding, Parser, Payload};

/// Name of the custom section that carries a revision's metadata.
pub const SECTION: &str = "retort:revision";
/// Version of the metadata format this host writes and reads.
pub const FORMAT: u32 = 1;

/// Errors reading or writing revision files.
#[derive(Debug, thiserror::Error)]
/// Why a revision component cannot be read as a revision.
pub enum RevisionError {
    /// The file cannot be read.
    #[error("cannot read {path}")]
    Io {
        /// The component file (or the name it was given).
        path: PathBuf,
        #[source]
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not WebAssembly.
    #[error("{path} is not a WebAssembly component")]
    Malformed {
        /// The component file (or the name it was given).
        path: PathBuf,
        #[source]
        /// The underlying error.
        source: wasmparser::BinaryReaderError,
    },
    /// A core module rather than a component.
    #[error(
        "{path} is a core wasm module, not a component: make it a component first (e.g. `wasm-tools component new`)"
    )]
    CoreModule {
        /// The component file (or the name it was given).
        path: PathBuf,
    },
    /// A component without Retort's metadata section.
    #[error(
        "{path} has no `{SECTION}` section: it is a component but not a revision (use `retort pack`)"
    )]
    NoMetadata {
        /// The component file (or the name it was given).
        path: PathBuf,
    },
    /// A component with two metadata sections.
    #[error("{path} has more than one `{SECTION}` section")]
    DuplicateMetadata {
        /// The component file (or the name it was given).
        path: PathBuf,
    },
    /// The metadata section is not valid JSON metadata.
    #[error("{path}: the `{SECTION}` section is not valid metadata")]
    BadMetadata {
        /// The component file (or the name it was given).
        path: PathBuf,
        #[source]
        /// The underlying error.
        source: serde_json::Error,
    },
    /// Metadata written by a newer Retort.
    #[error("{path}: metadata format {found} is newer than this retort understands ({FORMAT})")]
    FutureFormat {
        /// The component file (or the name it was given).
        path: PathBuf,
        /// The format version the metadata says.
        found: u32,
    },
    /// A revision id outside the allowed characters or length.
    #[error(
        "{path}: invalid revision id {id:?}: use 1 to 32 characters from [A-Za-z0-9_-], not starting with '-'"
    )]
    BadId {
        /// The component file (or the name it was given).
        path: PathBuf,
        /// The revision's id.
        id: String,
    },
    /// A message or label with a line break or control character.
    #[error(
        "{path}: the {field} of revision {id} holds a line break or another control character ({text:?}): it must be one line"
    )]
    ControlCharacter {
        /// The component file (or the name it was given).
        path: PathBuf,
        /// The revision's id.
        id: String,
        /// Which field (`message`, a branch label...).
        field: &'static str,
        /// The offending text.
        text: String,
    },
    /// `pack` given a component that is already a revision.
    #[error("{path} is already revision {id}: pack takes a component without metadata")]
    AlreadyPacked {
        /// The component file (or the name it was given).
        path: PathBuf,
        /// The revision's id.
        id: String,
    },
    /// Two revisions have the same id.
    #[error("revision {id} is defined twice: {first} and {second}")]
    DuplicateId {
        /// The revision's id.
        id: String,
        /// Where it is defined first.
        first: PathBuf,
        /// Where it is defined again.
        second: PathBuf,
    },
}

/// What a revision says about itself. Serialized as JSON in the custom section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Metadata format version.
    pub format: u32,
    /// Its id: 1 to 32 characters from `[A-Za-z0-9_-]`, not starting with `-`.
    pub id: String,
    /// The revisions this one follows: none for a base, several for a merge.
    #[serde(default)]
    pub down: Vec<String>,
    #[serde(default)]
    /// Revisions or branch labels that must be applied first (Alembic's `depends_on`).
    pub depends_on: Vec<String>,
    #[serde(default)]
    /// Branch labels this revision starts or carries.
    pub branch_labels: Vec<String>,
    #[serde(default)]
    /// One line saying what it does.
    pub message: String,
    /// RFC 3339 creation time.
    #[serde(default)]
    pub created: String,
    /// False for a revision that must run outside a transaction (e.g. PostgreSQL's
    /// `CREATE INDEX CONCURRENTLY`, SQLite's `VACUUM`).
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub transactional: bool,
}

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

impl Metadata {
    /// Metadata for a base revision with this id and message, created now, transactional.
    pub fn new(id: impl Into<String>, message: impl Into<String>) -> Self {
        Metadata {
            format: FORMAT,
            id: id.into(),
            down: Vec::new(),
            depends_on: Vec::new(),
            branch_labels: Vec::new(),
            message: message.into(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            transactional: true,
        }
    }
}

/// True for ids made of 1 to 32 characters from `[A-Za-z0-9_-]`, not starting with
/// `-` (which would read as a command-line flag).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('-')
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A revision file on disk: its metadata and the digest of its bytes.
#[derive(Debug, Clone)]
pub struct Revision {
    /// Its metadata (from the component's custom section), shared with the graph.
    pub meta: std::sync::Arc<Metadata>,
    /// Its file (or, for one given in code, its name).
    pub path: PathBuf,
    /// SHA-256 of the whole file, lowercase hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// The component's bytes, for a revision given in code rather than read from `path`
    /// (which then only names it).
    pub(crate) embedded: Option<std::sync::Arc<[u8]>>,
}

impl Revision {
    /// Reads a revision's metadata and digest; nothing is compiled.
    pub fn open(path: &Path) -> Result<Self, RevisionError> {
        let bytes = std::fs::read(path).map_err(|source| RevisionError::Io {
            path: path.to_owned(),
            source,
        })?;
        let meta = read_metadata(&bytes, path)?.into();
        Ok(Revision {
            meta,
            path: path.to_owned(),
            sha256: sha256_hex(&bytes),
            size: bytes.len() as u64,
            embedded: None,
        })
    }

    /// A revision from a component held in memory (e.g. by `include_bytes!`); `name`
    /// stands for its path in messages. Nothing is compiled.
    pub fn from_bytes(
        name: impl Into<PathBuf>,
        bytes: impl Into<std::sync::Arc<[u8]>>,
    ) -> Result<Self, RevisionError> {
        let path = name.into();
        let bytes: std::sync::Arc<[u8]> = bytes.into();
        let meta = read_metadata(&bytes, &path)?.into();
        Ok(Revision {
            meta,
            path,
            sha256: sha256_hex(&bytes),
            size: bytes.len() as u64,
            embedded: Some(bytes),
        })
    }

    /// The component's bytes: the embedded ones, or the file's.
    pub(crate) fn bytes(&self) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
        match &self.embedded {
            Some(bytes) => Ok(std::borrow::Cow::Borrowed(bytes)),
            None => std::fs::read(&self.path).map(std::borrow::Cow::Owned),
        }
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.meta.id
    }
}

/// The SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Finds the metadata section among the component's top-level sections.
pub fn read_metadata(bytes: &[u8], path: &Path) -> Result<Metadata, RevisionError> {
    match find_section(bytes, path)? {
        Some(data) => parse_metadata(data, path),
        None => Err(RevisionError::NoMetadata {
            path: path.to_owned(),
        }),
    }
}

fn parse_metadata(data: &[u8], path: &Path) -> Result<Metadata, RevisionError> {
    let meta: Metadata =
        serde_json::from_slice(data).map_err(|source| RevisionError::BadMetadata {
            path: path.to_owned(),
            source,
        })?;
    if meta.format > FORMAT {
        return Err(RevisionError::FutureFormat {
            path: path.to_owned(),
            found: meta.format,
        });
    }
    check_ids(&meta, path)?;
    Ok(meta)
}

/// Every id of `meta` is valid, and its message and labels are single lines (they are
/// printed by `history`, where a line break would forge lines).
fn check_ids(meta: &Metadata, path: &Path) -> Result<(), RevisionError> {
    for id in std::iter::once(&meta.id)
        .chain(&meta.down)
        .chain(&meta.depends_on)
    {
        if !valid_id(id) {
            return Err(RevisionError::BadId {
                path: path.to_owned(),
                id: id.clone(),
            });
        }
    }
    let fields = std::iter::once(("message", &meta.message))
        .chain(meta.branch_labels.iter().map(|l| ("branch label", l)));
    for (field, text) in fields {
        if text.chars().any(char::is_control) {
            return Err(RevisionError::ControlCharacter {
                path: path.to_owned(),
                id: meta.id.clone(),
                field,
                text: text.clone(),
            });
        }
    }
    Ok(())
}

/// The data of the top-level metadata section, if any. Checks that the bytes are a
/// component; nested modules and components are skipped, not read.
fn find_section<'a>(bytes: &'a [u8], path: &Path) -> Result<Option<&'a [u8]>, RevisionError> {
    let malformed = |source| RevisionError::Malformed {
        path: path.to_owned(),
        source,
    };
    let mut found = None;
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(malformed)? {
            Payload::Version {
                encoding: Encoding::Module,
                ..
            } if depth == 0 => {
                return Err(RevisionError::CoreModule {
                    path: path.to_owned(),
                });
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::CustomSection(reader) if depth == 0 && reader.name() == SECTION => {
                if found.is_some() {
                    return Err(RevisionError::DuplicateMetadata {
                        path: path.to_owned(),
                    });
                }
                found = Some(reader.data());
            }
            _ => {}
        }
    }
    Ok(found)
}

/// What a component imports and exports at its top level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Interface {
    /// The interfaces it imports.
    pub imports: Vec<String>,
    /// The functions and interfaces it exports.
    pub exports: Vec<String>,
}

impl Interface {
    /// True when the component imports any WASI interface.
    pub fn needs_wasi(&self) -> bool {
        self.imports.iter().any(|i| i.starts_with("wasi:"))
    }

    /// The Retort world the component targets, judged by its imports and exports.
    pub fn world(&self) -> Option<String> {
        let op = self
            .imports
            .iter()
            .find(|i| i.starts_with("retort:migration/op"))?;
        let version = op
            .split_once('@')
            .map(|(_, v)| format!("@{v}"))
            .unwrap_or_default();
        let exports_both = ["upgrade", "downgrade"]
            .iter()
            .all(|e| self.exports.iter().any(|x| x == e));
        exports_both.then(|| format!("retort:migration/revision{version}"))
    }
}

/// The top-level imports and exports of a component (nested modules are skipped).
pub fn interface(bytes: &[u8], path: &Path) -> Result<Interface, RevisionError> {
    let malformed = |source| RevisionError::Malformed {
        path: path.to_owned(),
        source,
    };
    let mut found = Interface::default();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(malformed)? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    found
                        .imports
                        .push(import.map_err(malformed)?.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    found
                        .exports
                        .push(export.map_err(malformed)?.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(found)
}

/// Makes a component a revision by appending the metadata section. The input must be a
/// valid component without metadata of its own.
pub fn pack(component: &[u8], meta: &Metadata, path: &Path) -> Result<Vec<u8>, RevisionError> {
    check_ids(meta, path)?;
    if let Some(existing) = find_section(component, path)? {
        let old = parse_metadata(existing, path)?;
        return Err(RevisionError::AlreadyPacked {
            path: path.to_owned(),
            id: old.id,
        });
    }
    let mut features = wasmparser::WasmFeatures::default();
    features.insert(wasmparser::WasmFeatures::COMPONENT_MODEL);
    wasmparser::Validator::new_with_features(features)
        .validate_all(component)
        .map_err(|source| RevisionError::Malformed {
            path: path.to_owned(),
            source,
        })?;
    let data = serde_json::to_vec(meta).expect("metadata serializes");
    let mut out = component.to_vec();
    wasm_encoder::ComponentSection::append_to_component(
        &wasm_encoder::CustomSection {
            name: SECTION.into(),
            data: data.into(),
        },
        &mut out,
    );
    Ok(out)
}

/// Every revision in a directory of components (`*.wasm`), sorted by file name.
pub fn load_dir(dir: &Path) -> Result<Vec<Revision>, RevisionError> {
    let io = |source| RevisionError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut paths = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let path = entry.map_err(io)?.path();
                if path.extension().is_some_and(|e| e == "wasm") {
                    paths.push(path);
                }
            }
        }
        // No components yet: an empty history.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    paths.sort();
    let mut revisions: Vec<Revision> = Vec::with_capacity(paths.len());
    let mut seen = std::collections::HashMap::new();
    for path in paths {
        let rev = Revision::open(&path)?;
        if let Some(first) = seen.insert(rev.meta.id.clone(), path.clone()) {
            return Err(RevisionError::DuplicateId {
                id: rev.meta.id.clone(),
                first,
                second: path,
            });
        }
        revisions.push(rev);
    }
    Ok(revisions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component() -> Vec<u8> {
        wat::parse_str("(component)").unwrap()
    }

    #[test]
    fn pack_then_read_round_trips() {
        let mut meta = Metadata::new("abc123", "first");
        meta.down = vec!["0001".into()];
        let packed = pack(&component(), &meta, Path::new("x.wasm")).unwrap();
        assert_eq!(read_metadata(&packed, Path::new("x.wasm")).unwrap(), meta);
        // The packed file is still a valid component.
        let mut features = wasmparser::WasmFeatures::default();
        features.insert(wasmparser::WasmFeatures::COMPONENT_MODEL);
        wasmparser::Validator::new_with_features(features)
            .validate_all(&packed)
            .unwrap();
    }

    #[test]
    fn refuses_core_modules_and_garbage() {
        let module = wat::parse_str("(module)").unwrap();
        assert!(matches!(
            read_metadata(&module, Path::new("m.wasm")),
            Err(RevisionError::CoreModule { .. })
        ));
        assert!(matches!(
            read_metadata(b"not wasm at all", Path::new("g.wasm")),
            Err(RevisionError::Malformed { .. })
        ));
        assert!(matches!(
            read_metadata(&component(), Path::new("c.wasm")),
            Err(RevisionError::NoMetadata { .. })
        ));
    }

    #[test]
    fn refuses_bad_ids_and_double_packing() {
        let bad = Metadata::new("x\"; drop", "m");
        assert!(matches!(
            pack(&component(), &bad, Path::new("c.wasm")),
            Err(RevisionError::BadId { .. })
        ));
        let packed = pack(&component(), &Metadata::new("a1", "m"), Path::new("c.wasm")).unwrap();
        assert!(pack(&packed, &Metadata::new("a2", "m"), Path::new("c.wasm")).is_err());
    }
}
