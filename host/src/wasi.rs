//! The WASI context of a revision that imports WASI (Python, JavaScript and C toolchains
//! produce such components): locked down, whatever the component asks for.
//!
//! - no environment variables, no arguments, stdin closed;
//! - no preopened directory, unless `[sandbox.read-only-dirs]` grants this revision one,
//!   seen by the guest as `/data`, read-only (wasmtime-wasi opens it with cap-std, so
//!   paths cannot escape it);
//! - TCP and UDP off and every address refused; name lookup off;
//! - stdout and stderr go to the migration log line by line, up to
//!   `[sandbox] max-output-bytes` each; the rest is dropped, and the log says so;
//! - clocks and random numbers are the host's (harmless, and language runtimes need
//!   them to start).

use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use crate::ops::LogSink;
use crate::wit::LogLevel;

/// Where a granted directory appears inside the guest.
pub const GUEST_DATA_DIR: &str = "/data";

/// A line longer than this is logged in pieces.
const MAX_LINE: usize = 16 * 1024;

/// How much of stderr is kept to explain a failure.
const STDERR_TAIL: usize = 4 * 1024;

/// A context with nothing in it but the two log streams and, when granted, one
/// read-only directory.
pub fn locked_down(
    revision: &str,
    log: LogSink,
    max_output_bytes: usize,
    read_only_dir: Option<&Path>,
) -> Result<(WasiCtx, Output), String> {
    let output = Output {
        stdout: LogStream::new(
            revision,
            log.clone(),
            LogLevel::Info,
            "stdout",
            max_output_bytes,
        ),
        stderr: LogStream::new(revision, log, LogLevel::Warn, "stderr", max_output_bytes),
    };
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(output.stdout.clone())
        .stderr(output.stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    if let Some(dir) = read_only_dir {
        builder
            .preopened_dir(dir, GUEST_DATA_DIR, FsPerms::ReadOnly)
            .map_err(|e| {
                format!(
                    "cannot open {} (granted read-only in [sandbox.read-only-dirs]): {e:#}",
                    dir.display()
                )
            })?;
    }
    Ok((builder.build(), output))
}

/// The guest's stdout and stderr.
#[derive(Clone)]
pub struct Output {
    stdout: LogStream,
    stderr: LogStream,
}

impl Output {
    /// Logs what is left of unfinished lines and any truncation; returns the end of
    /// stderr (a traceback, say) to explain a failure.
    pub fn finish(&self) -> Option<String> {
        self.stdout.finish();
        self.stderr.finish();
        let tail = self.stderr.lock().tail.trim_end().to_owned();
        (!tail.is_empty()).then_some(tail)
    }
}

/// One output stream, written to the log a line at a time.
#[derive(Clone)]
struct LogStream {
    state: Arc<Mutex<StreamState>>,
}

struct StreamState {
    revision: String,
    log: LogSink,
    level: LogLevel,
    name: &'static str,
    cap: usize,
    written: usize,
    dropped: usize,
    line: Vec<u8>,
    tail: String,
}

impl LogStream {
    fn new(revision: &str, log: LogSink, level: LogLevel, name: &'static str, cap: usize) -> Self {
        LogStream {
            state: Arc::new(Mutex::new(StreamState {
                revision: revision.to_owned(),
                log,
                level,
                name,
                cap,
                written: 0,
                dropped: 0,
                line: Vec::new(),
                tail: String::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StreamState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, bytes: &[u8]) {
        let mut state = self.lock();
        let room = state.cap.saturating_sub(state.written);
        let (kept, dropped) = bytes.split_at(bytes.len().min(room));
        state.written += kept.len();
        state.dropped += dropped.len();
        for &byte in kept {
            if byte == b'\n' {
                state.emit();
            } else {
                state.line.push(byte);
                if state.line.len() >= MAX_LINE {
                    state.emit();
                }
            }
        }
    }

    fn finish(&self) {
        let mut state = self.lock();
        if !state.line.is_empty() {
            state.emit();
        }
        if state.dropped > 0 {
            let message = format!(
                "{} output over the max-output-bytes limit of {} ([sandbox] in retort.toml): {} bytes dropped",
                state.name, state.cap, state.dropped
            );
            (state.log)(&state.revision, LogLevel::Warn, &message);
            state.dropped = 0;
        }
    }
}

impl StreamState {
    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.line).into_owned();
        self.line.clear();
        (self.log)(&self.revision, self.level, &line);
        if self.level == LogLevel::Warn {
            self.tail.push_str(&line);
            self.tail.push('\n');
            if self.tail.len() > STDERR_TAIL {
                let mut cut = self.tail.len() - STDERR_TAIL;
                while !self.tail.is_char_boundary(cut) {
                    cut += 1;
                }
                self.tail.drain(..cut);
            }
        }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// Writes never block and never fail: output past the cap is counted and dropped, so
/// that a chatty guest is not ended by its own logging.
impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
