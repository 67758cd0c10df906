//! The wasmtime sandbox: engine configuration, compiled-component cache, limits, and
//! calling a revision's exports. Knows nothing about SQL.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, StoreLimitsBuilder};

use crate::cache::Cache;
use crate::config::Limits;
use crate::generated::Revision as RevisionWorld;
use crate::graph::Direction;
use crate::ops::OpState;
use crate::revision::Revision;

mod pipeline;

pub(crate) use pipeline::Pipeline;

/// Why a revision could not be loaded into the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The wasmtime engine (or the compile cache) could not be set up.
    #[error("cannot set up the wasm engine: {0}")]
    Engine(String),
    /// `compile_all` without a cache directory.
    #[error("no compile cache to write to: set [sandbox] cache-dir in retort.toml")]
    NoCache,
    /// The component file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The component imports an interface the host does not provide.
    #[error(
        "revision {revision} ({path}) imports {}, which this host does not provide: a revision may import only retort:migration/op (and its types) and WASI 0.2 cli, clocks, filesystem, io, random and sockets (locked down)",
        .imports.join(", ")
    )]
    ForbiddenImports {
        /// The revision.
        revision: String,
        /// Its component.
        path: std::path::PathBuf,
        /// The imports refused.
        imports: Vec<String>,
    },
    /// The component does not compile (not a valid component, or not for this engine).
    #[error("revision {revision} ({path}) is not a valid component: {reason}")]
    Compile {
        /// The revision.
        revision: String,
        /// Its component.
        path: std::path::PathBuf,
        /// What the compiler said.
        reason: String,
    },
}

/// How one call into a revision ended, when it did not end well.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The component cannot be instantiated: e.g. it imports something the host does
    /// not provide, or does not export the revision world.
    #[error("cannot instantiate: {0}")]
    Instantiate(String),
    /// The guest returned an error from `upgrade`/`downgrade`.
    #[error("{0}")]
    Guest(String),
    /// The guest trapped (a panic, an exhausted limit, a bug).
    #[error("trapped: {0}")]
    Trap(String),
    /// The wall-clock limit ran out (the guest computed, waited, or the database worked
    /// that long): the caller should interrupt the database before rolling back.
    #[error("trapped: {0}")]
    TimedOut(String),
}

impl CallError {
    /// The first line of a trap, which names the limit that ran out (if one did).
    pub fn trap_summary(&self) -> Option<&str> {
        match self {
            CallError::Trap(m) | CallError::TimedOut(m) => m.lines().next(),
            _ => None,
        }
    }
}

/// The interfaces the host provides; anything else a component imports is refused.
/// WASI 0.2 is linked for the toolchains that need it, under a locked-down context
/// (crate::wasi); wasi:http and anything unknown are not.
const PROVIDED: &[&str] = &[
    "retort:migration/op@0.1.",
    "retort:migration/types@0.1.",
    "wasi:cli/environment@0.2.",
    "wasi:cli/exit@0.2.",
    "wasi:cli/stdin@0.2.",
    "wasi:cli/stdout@0.2.",
    "wasi:cli/stderr@0.2.",
    "wasi:cli/terminal-",
    "wasi:clocks/monotonic-clock@0.2.",
    "wasi:clocks/wall-clock@0.2.",
    "wasi:filesystem/types@0.2.",
    "wasi:filesystem/preopens@0.2.",
    "wasi:io/error@0.2.",
    "wasi:io/poll@0.2.",
    "wasi:io/streams@0.2.",
    "wasi:random/",
    "wasi:sockets/",
];

/// The engine every revision runs on, and the cache of compiled components.
pub struct Sandbox {
    compiler: Compiler,
    /// One linker per engine: the optimising one's, and the baseline one's (`auto`).
    linker: Linker<OpState>,
    baseline_linker: Option<Linker<OpState>>,
    limits: Limits,
    /// Read-only directory grants by revision id (`[sandbox.read-only-dirs]`).
    read_only_dirs: BTreeMap<String, PathBuf>,
    /// Traps carry the wasm backtrace (`-v`).
    backtraces: bool,
}

impl Sandbox {
    /// An engine with `limits` (fuel, memory, stack, compiler), caching compiled
    /// components in `cache_dir` when given. With `compiler = "auto"` there are two:
    /// Cranelift, for `retort compile`, for what it cached and for small components,
    /// and Winch, for a large component (an interpreter inside) that a run finds
    /// nowhere in the cache and must compile itself.
    pub fn new(limits: &Limits, cache_dir: Option<&Path>) -> Result<Sandbox, SandboxError> {
        use crate::config::Compiler as Choice;
        let (main, baseline) = match limits.compiler {
            Choice::Auto => (
                Target::new(limits, wasmtime::Strategy::Cranelift, cache_dir)?,
                Some(Target::new(limits, wasmtime::Strategy::Winch, cache_dir)?),
            ),
            Choice::Cranelift => (
                Target::new(limits, wasmtime::Strategy::Cranelift, cache_dir)?,
                None,
            ),
            Choice::Winch => (
                Target::new(limits, wasmtime::Strategy::Winch, cache_dir)?,
                None,
            ),
        };
        let baseline_linker = baseline.as_ref().map(|t| linker(&t.engine)).transpose()?;
        Ok(Sandbox {
            linker: linker(&main.engine)?,
            baseline_linker,
            compiler: Compiler { main, baseline },
            limits: limits.clone(),
            read_only_dirs: BTreeMap::new(),
            backtraces: false,
        })
    }

    /// Grants these revisions (by id) one read-only directory each.
    pub fn with_read_only_dirs(mut self, grants: BTreeMap<String, PathBuf>) -> Self {
        self.read_only_dirs = grants;
        self
    }

    /// Whether trap messages carry the wasm backtrace (off: one line naming the trap).
    pub fn with_backtraces(mut self, on: bool) -> Self {
        self.backtraces = on;
        self
    }

    /// The components of a plan, compiled on every core ahead of the step that runs
    /// them and dropped after it ([`Pipeline`]), once every component the cache does not
    /// hold has been checked without compiling it, on every core: readable, unchanged
    /// since it was read, a valid component, importing only what the host provides. The
    /// first failure in plan order is returned, before anything runs. A component the
    /// cache holds passed these checks when it was compiled and is not read again.
    pub(crate) fn pipeline(
        &self,
        revisions: Vec<std::sync::Arc<Revision>>,
    ) -> Result<Pipeline, SandboxError> {
        let todo: Vec<&Revision> = revisions
            .iter()
            .map(|r| &**r)
            .filter(|r| !self.compiler.cached(r))
            .collect();
        on_every_core(&todo, |r| precheck(r))?;
        let all_cached = todo.is_empty();
        Ok(Pipeline::start(
            self.compiler.clone(),
            revisions,
            all_cached,
        ))
    }

    /// Compiles every component into the cache ahead of a deploy (`retort compile`), on
    /// every core, so that a deploy with the same cache directory compiles nothing. The
    /// entries carry the cache's HMAC: a deploy uses one only when it verifies and is
    /// bound to that component's digest, and compiles again otherwise. Returns how many
    /// were compiled (the rest were cached already).
    pub fn compile_all<R: std::borrow::Borrow<Revision>>(
        &self,
        revisions: &[R],
    ) -> Result<usize, SandboxError> {
        let main = &self.compiler.main;
        if main.cache.is_none() {
            return Err(SandboxError::NoCache);
        }
        // Compiling checks what `precheck` would, and the earliest failure is returned.
        // The optimising compiler's artifacts, whatever a run would compile with.
        let todo: Vec<&Revision> = revisions
            .iter()
            .map(|r| r.borrow())
            .filter(|r| !main.cached(r))
            .collect();
        on_every_core(&todo, |r| main.load(r).map(drop))?;
        Ok(todo.len())
    }

    /// Limits for one revision call's store.
    pub(crate) fn store_limits(&self) -> wasmtime::StoreLimits {
        StoreLimitsBuilder::new()
            .memory_size((self.limits.memory_mib as usize).saturating_mul(1 << 20))
            .table_elements(self.limits.table_elements)
            .instances(self.limits.instances)
            .trap_on_grow_failure(true)
            .build()
    }

    /// The limits ops enforce on each call.
    pub(crate) fn call_limits(&self) -> crate::ops::CallLimits {
        crate::ops::CallLimits {
            max_call_bytes: self.limits.max_call_bytes,
            max_batch_rows: self.limits.max_batch_rows,
        }
    }

    /// Instantiates the component and calls `upgrade` or `downgrade`. The state comes
    /// back in every case so that the caller can commit or roll back its transaction.
    pub(crate) async fn call(
        &self,
        component: &Component,
        direction: Direction,
        state: OpState,
    ) -> (OpState, Result<(), CallError>) {
        let mut state = state;
        let grant = self
            .read_only_dirs
            .get(&state.revision)
            .map(PathBuf::as_path);
        let output = match crate::wasi::locked_down(
            &state.revision,
            state.log_sink(),
            self.limits.max_output_bytes,
            grant,
        ) {
            Ok((ctx, output)) => {
                state.set_wasi(ctx);
                output
            }
            Err(e) => return (state, Err(CallError::Instantiate(e))),
        };
        let (mut state, outcome) = self.run(component, direction, state).await;
        if let Some(tail) = output.finish()
            && outcome.is_err()
            && state.last_error_log.is_none()
        {
            state.last_error_log = Some(tail);
        }
        (state, outcome)
    }

    /// Instantiates and calls, within the fuel and wall-clock limits.
    async fn run(
        &self,
        component: &Component,
        direction: Direction,
        state: OpState,
    ) -> (OpState, Result<(), CallError>) {
        // The engine that compiled the component, and its linker.
        let linker = match &self.baseline_linker {
            Some(baseline) if !Engine::same(component.engine(), &self.compiler.main.engine) => {
                baseline
            }
            _ => &self.linker,
        };
        let mut store = Store::new(component.engine(), state);
        store.limiter(|state| &mut state.limits);
        if let Err(e) = store.set_fuel(self.limits.fuel) {
            return (
                store.into_data(),
                Err(CallError::Instantiate(e.to_string())),
            );
        }
        let instance = match RevisionWorld::instantiate_async(&mut store, component, linker).await {
            Ok(instance) => instance,
            Err(e) => {
                return (
                    store.into_data(),
                    Err(CallError::Instantiate(format!("{e:#}"))),
                );
            }
        };
        let call = async {
            match direction {
                Direction::Up => instance.call_upgrade(&mut store).await,
                Direction::Down => instance.call_downgrade(&mut store).await,
            }
        };
        // Fuel bounds computation; this bounds waiting too (a WASI sleep, a lock). Dropping
        // the call future cancels the guest; the store, and its transaction, stay ours.
        let result = if self.limits.timeout_secs == 0 {
            Some(call.await)
        } else {
            tokio::time::timeout(Duration::from_secs(self.limits.timeout_secs), call)
                .await
                .ok()
        };
        let outcome = match result {
            Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(message))) => Err(CallError::Guest(message)),
            Some(Err(trap)) => Err(CallError::Trap(self.describe_trap(&trap))),
            None => Err(CallError::TimedOut(format!(
                "the wall-clock limit of {} s per call ran out ([sandbox] timeout-secs in retort.toml)",
                self.limits.timeout_secs
            ))),
        };
        (store.into_data(), outcome)
    }

    /// The wasmtime engine (the optimising one, with `auto`).
    pub fn engine(&self) -> &Engine {
        &self.compiler.main.engine
    }

    /// The trap first (what a user can act on), naming the limit when one ran out, then
    /// the wasm backtrace if any.
    fn describe_trap(&self, err: &wasmtime::Error) -> String {
        let backtrace = err
            .downcast_ref::<wasmtime::WasmBacktrace>()
            .filter(|_| self.backtraces)
            .map(|bt| format!("\n{bt}"))
            .unwrap_or_default();
        if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return format!(
                "the revision called exit({}) instead of returning from its export",
                exit.0
            );
        }
        match err.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::StackOverflow) => format!(
                "the wasm stack limit of {} KiB ran out ([sandbox] stack-kib in retort.toml){backtrace}",
                self.limits.stack_kib
            ),
            Some(wasmtime::Trap::OutOfFuel) => format!(
                "the fuel limit of {} per call ran out ([sandbox] fuel in retort.toml){backtrace}",
                self.limits.fuel
            ),
            Some(trap) => format!("{trap}{backtrace}"),
            None if format!("{err:#}").contains("growing table") => format!(
                "the table limit of {} elements was reached ([sandbox] table-elements in retort.toml): {err:#}",
                self.limits.table_elements
            ),
            None if format!("{err:#}").contains("growing memory") => format!(
                "the memory limit of {} MiB was reached ([sandbox] memory-mib in retort.toml): {err:#}",
                self.limits.memory_mib
            ),
            // The root cause alone; the chain (with its backtrace) with -v.
            None if !self.backtraces => err.root_cause().to_string(),
            None => format!("{err:#}"),
        }
    }
}

/// Compiles components (or loads them from the cache): what the pipeline's threads
/// share.
#[derive(Clone)]
pub(crate) struct Compiler {
    /// The configured compiler (Cranelift with `auto`).
    main: Target,
    /// With `auto`: Winch, for a large component the main compiler's cache does not
    /// hold.
    baseline: Option<Target>,
}

/// With `auto`, a component at least this large that a run must compile goes to Winch:
/// it carries an interpreter (Python, JavaScript: 12-18 MB), which Winch compiles 3-4x
/// faster than Cranelift, with or without Cranelift's function cache. Smaller ones go
/// to Cranelift, whose function cache makes a run of many similar small components
/// faster than Winch (BENCHMARKS.md; docs/design.md, note 50).
pub const BASELINE_FROM_BYTES: u64 = 1 << 20;

impl Compiler {
    /// The component for a run: the main compiler's cached artifact when a verified one
    /// exists; otherwise, for a large component with `auto`, the baseline compiler's
    /// (cached, or compiled now); otherwise the main compiler's, compiled now.
    fn load(&self, revision: &Revision) -> Result<Component, SandboxError> {
        match &self.baseline {
            Some(baseline) if revision.size >= BASELINE_FROM_BYTES => {
                match self.main.cached_component(revision) {
                    Some(component) => Ok(component),
                    None => baseline.load(revision),
                }
            }
            _ => self.main.load(revision),
        }
    }

    /// Whether a cache holds an entry [`Compiler::load`] would use (see
    /// [`Target::cached`]).
    fn cached(&self, revision: &Revision) -> bool {
        self.main.cached(revision)
            || self
                .baseline
                .as_ref()
                .is_some_and(|b| revision.size >= BASELINE_FROM_BYTES && b.cached(revision))
    }
}

/// One compiler: its engine and its cache.
#[derive(Clone)]
struct Target {
    engine: Engine,
    cache: Option<Cache>,
}

impl Target {
    fn new(
        limits: &Limits,
        strategy: wasmtime::Strategy,
        cache_dir: Option<&Path>,
    ) -> Result<Target, SandboxError> {
        let mut config = Config::new();
        config.consume_fuel(true);
        config.wasm_component_model(true);
        config.strategy(strategy);
        let stack = limits.stack_kib.saturating_mul(1024);
        config.max_wasm_stack(stack);
        // Host calls run on the fiber's stack too: leave them room beyond the wasm stack.
        config.async_stack_size(stack + (2 << 20));
        // Cranelift keeps each compiled function beside the components, so that code
        // shared between components (an interpreter) is compiled once (FunctionCache).
        if let (Some(dir), wasmtime::Strategy::Cranelift) = (cache_dir, strategy)
            && let Ok(functions) = crate::cache::FunctionCache::open(dir)
        {
            config
                .enable_incremental_compilation(std::sync::Arc::new(functions))
                .map_err(|e| SandboxError::Engine(e.to_string()))?;
        }
        let engine = Engine::new(&config).map_err(|e| SandboxError::Engine(e.to_string()))?;
        // A cache that cannot be opened only costs compile time.
        let cache = cache_dir.and_then(|dir| Cache::open(dir, &engine).ok());
        Ok(Target { engine, cache })
    }

    /// The compiled component, with its imports checked against what the host provides.
    fn load(&self, revision: &Revision) -> Result<Component, SandboxError> {
        if let Some(component) = self.cached_component(revision) {
            return Ok(component);
        }
        let bytes = verified_bytes(revision)?;
        let component =
            Component::from_binary(&self.engine, &bytes).map_err(|e| SandboxError::Compile {
                revision: revision.id().to_owned(),
                path: revision.path.clone(),
                reason: format!("{e:#}"),
            })?;
        let forbidden: Vec<String> = component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .filter(|name| !provided(name))
            .collect();
        if !forbidden.is_empty() {
            return Err(SandboxError::ForbiddenImports {
                revision: revision.id().to_owned(),
                path: revision.path.clone(),
                imports: forbidden,
            });
        }
        if let (Some(cache), Ok(artifact)) = (&self.cache, component.serialize()) {
            cache.put(&revision.sha256, &artifact);
        }
        Ok(component)
    }

    /// The component from a verified cache entry, if there is one.
    fn cached_component(&self, revision: &Revision) -> Option<Component> {
        let artifact = self.cache.as_ref()?.get(&revision.sha256)?;
        // SAFETY: `Cache::get` returns only artifacts this cache serialized itself,
        // authenticated with its own key and bound to this component's digest. Only
        // components that compiled and passed the imports check are cached.
        #[allow(unsafe_code)]
        unsafe { Component::deserialize(&self.engine, &artifact) }.ok()
    }

    /// Whether the cache holds an entry for this component (not verified: loading it
    /// verifies it, and compiles again when it does not verify).
    fn cached(&self, revision: &Revision) -> bool {
        self.cache.as_ref().is_some_and(|c| c.has(&revision.sha256))
    }
}

/// A linker for `engine` with what the host provides: the `retort:migration` world and
/// WASI 0.2 (locked down per call, crate::wasi).
fn linker(engine: &Engine) -> Result<Linker<OpState>, SandboxError> {
    let mut linker = Linker::new(engine);
    RevisionWorld::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
        .map_err(|e| SandboxError::Engine(e.to_string()))?;
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(|e| SandboxError::Engine(e.to_string()))?;
    Ok(linker)
}

/// Runs `f` on every item on every core (no more threads than items) and returns the
/// failure of the earliest item in order. After a failure no thread takes a new item;
/// every item before it was taken already and is finished, so none earlier is missed.
fn on_every_core<T: Sync>(
    items: &[T],
    f: impl Fn(&T) -> Result<(), SandboxError> + Sync,
) -> Result<(), SandboxError> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let first = std::sync::Mutex::new(None::<(usize, SandboxError)>);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else {
                        return;
                    };
                    if let Err(e) = f(item) {
                        stop.store(true, Ordering::Relaxed);
                        let mut first = first.lock().expect("not poisoned");
                        if first.as_ref().is_none_or(|(j, _)| i < *j) {
                            *first = Some((i, e));
                        }
                    }
                }
            });
        }
    });
    match first.into_inner().expect("not poisoned") {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

fn provided(import: &str) -> bool {
    PROVIDED.iter().any(|p| import.starts_with(p))
}

/// The component's bytes, refused if they are not what was read at load.
fn verified_bytes(revision: &Revision) -> Result<std::borrow::Cow<'_, [u8]>, SandboxError> {
    let bytes = revision.bytes().map_err(|source| SandboxError::Read {
        path: revision.path.clone(),
        source,
    })?;
    if crate::revision::sha256_hex(&bytes) != revision.sha256 {
        return Err(SandboxError::Compile {
            revision: revision.id().to_owned(),
            path: revision.path.clone(),
            reason: "the file changed while retort was running".into(),
        });
    }
    Ok(bytes)
}

/// What compiling would refuse, found without compiling: the bytes are a valid
/// component (validated with every feature on, so that nothing the engine accepts is
/// refused here) whose imports the host provides.
fn precheck(revision: &Revision) -> Result<(), SandboxError> {
    let bytes = verified_bytes(revision)?;
    let invalid = |e: wasmparser::BinaryReaderError| SandboxError::Compile {
        revision: revision.id().to_owned(),
        path: revision.path.clone(),
        reason: e.to_string(),
    };
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&bytes)
        .map_err(invalid)?;
    let mut forbidden = Vec::new();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        match payload.map_err(invalid)? {
            wasmparser::Payload::ModuleSection { .. }
            | wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let name = import.map_err(invalid)?.name.name;
                    if !provided(name) {
                        forbidden.push(name.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    if forbidden.is_empty() {
        Ok(())
    } else {
        Err(SandboxError::ForbiddenImports {
            revision: revision.id().to_owned(),
            path: revision.path.clone(),
            imports: forbidden,
        })
    }
}
