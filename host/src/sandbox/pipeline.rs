//! Compiling a plan's components ahead of the step that runs them.
//!
//! A first deploy replays every revision, and compiling costs far more than running. So
//! one thread per core compiles (or loads from the cache) the plan's components in
//! order, at most [`WINDOW_PER_THREAD`] per thread ahead of the step that runs: step 1
//! runs as soon as its component is ready while later ones compile, and each compiled
//! component is dropped after its step, so memory does not grow with the plan.
//!
//! When the cache holds every component of the plan, nothing is compiled and there are
//! no threads: loading an artifact costs less than handing it from another thread (a
//! wake-up each way, and the other core's view of the mapped code flushed).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::mpsc;
use wasmtime::component::Component;

use super::{Compiler, SandboxError};
use crate::revision::Revision;

/// How many components each thread may compile ahead of the running step.
const WINDOW_PER_THREAD: usize = 2;

/// The waiting threads are woken once per this many steps taken (and whenever the
/// runner must wait), not at every step: each wake is a context switch, and the
/// components they hand over wake the runner's thread too (issue 16). At most the
/// window, so that a thread holding the next component is always woken.
const WAKE_EVERY: usize = WINDOW_PER_THREAD;

type Loaded = Result<Component, SandboxError>;

/// The compiled components of a plan, handed out in order by [`Pipeline::next`].
pub(crate) struct Pipeline {
    shared: Arc<Shared>,
    results: mpsc::UnboundedReceiver<(usize, Loaded)>,
    /// Components compiled out of order, until their turn.
    ready: BTreeMap<usize, Loaded>,
    /// The index `next` hands out.
    turn: usize,
    revisions: Arc<Vec<Arc<Revision>>>,
    /// Every component is cached: `next` loads it on this thread.
    inline: Option<Compiler>,
}

struct Shared {
    /// The next index a thread takes.
    next: AtomicUsize,
    /// How many components the runner has taken; threads stay within the window of it.
    taken: Mutex<usize>,
    moved: Condvar,
    window: usize,
    /// The runner is gone (the run ended or failed): threads stop.
    stop: AtomicBool,
}

impl Pipeline {
    /// Starts compiling `revisions` on one thread per core (no more threads than
    /// components), or, when the cache holds `all_cached` of them, starts no thread.
    pub(crate) fn start(
        compiler: Compiler,
        revisions: Vec<Arc<Revision>>,
        all_cached: bool,
    ) -> Pipeline {
        let len = revisions.len();
        let threads = if all_cached {
            0
        } else {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(len)
                .max(1)
        };
        let shared = Arc::new(Shared {
            next: AtomicUsize::new(0),
            taken: Mutex::new(0),
            moved: Condvar::new(),
            window: threads.max(1) * WINDOW_PER_THREAD,
            stop: AtomicBool::new(false),
        });
        let (tx, results) = mpsc::unbounded_channel();
        let revisions = Arc::new(revisions);
        for _ in 0..threads.min(len) {
            let (shared, tx, revisions, compiler) = (
                shared.clone(),
                tx.clone(),
                revisions.clone(),
                compiler.clone(),
            );
            std::thread::spawn(move || work(&shared, &tx, &revisions, &compiler));
        }
        Pipeline {
            shared,
            results,
            ready: BTreeMap::new(),
            turn: 0,
            revisions,
            inline: all_cached.then_some(compiler),
        }
    }

    /// The next step's component, waiting for it to compile.
    pub(crate) async fn next(&mut self) -> Loaded {
        assert!(
            self.turn < self.revisions.len(),
            "every component was taken"
        );
        let turn = self.turn;
        if let Some(compiler) = &self.inline {
            // A cached artifact that does not verify is compiled here.
            self.turn += 1;
            return compiler.load(&self.revisions[turn]);
        }
        let loaded = loop {
            if let Some(loaded) = self.ready.remove(&turn) {
                break loaded;
            }
            if let Ok((i, loaded)) = self.results.try_recv() {
                self.ready.insert(i, loaded);
                continue;
            }
            // About to wait: the thread holding this component must not be waiting too.
            self.shared.moved.notify_all();
            match self.results.recv().await {
                Some((i, loaded)) => {
                    self.ready.insert(i, loaded);
                }
                // Every thread is gone without sending it: one panicked (said on stderr).
                None => {
                    let revision = &self.revisions[turn];
                    break Err(SandboxError::Compile {
                        revision: revision.id().to_owned(),
                        path: revision.path.clone(),
                        reason: "the thread compiling it stopped".into(),
                    });
                }
            }
        };
        self.turn += 1;
        *self.shared.taken.lock().expect("not poisoned") = self.turn;
        if self.turn.is_multiple_of(WAKE_EVERY) {
            self.shared.moved.notify_all();
        }
        loaded
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Taking the lock orders the store before any waiting thread's next check.
        drop(self.shared.taken.lock());
        self.shared.moved.notify_all();
    }
}

/// One compiling thread: takes the next index, waits until it is within the window,
/// compiles, sends.
fn work(
    shared: &Shared,
    tx: &mpsc::UnboundedSender<(usize, Loaded)>,
    revisions: &[Arc<Revision>],
    compiler: &Compiler,
) {
    loop {
        let i = shared.next.fetch_add(1, Ordering::SeqCst);
        if i >= revisions.len() {
            return;
        }
        {
            let mut taken = shared.taken.lock().expect("not poisoned");
            while i >= *taken + shared.window && !shared.stop.load(Ordering::SeqCst) {
                taken = shared.moved.wait(taken).expect("not poisoned");
            }
        }
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let loaded = compiler.load(&revisions[i]);
        if tx.send((i, loaded)).is_err() {
            return;
        }
    }
}
