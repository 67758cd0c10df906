//! The one output module of the CLI: text for people on stderr, JSON for programs on
//! stdout (`--format json`), and the renderings both share.

use std::sync::Arc;

use crate::graph::Graph;
use crate::migrate::Applied;
use crate::ops::LogSink;
use crate::revision::{self, Metadata};
use crate::wit::LogLevel;

/// Where a command's results go.
#[derive(Debug, Clone, Copy)]
pub(super) struct Output {
    /// `--format json`: results as JSON on stdout (text still goes to stderr).
    pub json: bool,
}

impl Output {
    /// A line for people, on stderr.
    pub fn say(&self, line: impl std::fmt::Display) {
        eprintln!("{line}");
    }

    /// A result for programs, on stdout, with `--format json` only.
    pub fn data<T: serde::Serialize + ?Sized>(&self, value: &T) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string(value)?);
        }
        Ok(())
    }

    /// Text when the format is text, JSON otherwise (read commands).
    pub fn either<T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
        text: impl FnOnce(),
    ) -> anyhow::Result<()> {
        if self.json {
            self.data(value)
        } else {
            text();
            Ok(())
        }
    }
}

/// Progress of a run on stderr: `Running up a -> b, message`, then `  done in N ms`.
pub(super) fn progress() -> crate::project::ProgressFn {
    Arc::new(
        |step: &crate::graph::Step, rev: &revision::Revision, done: Option<&Applied>| match done {
            None => {
                let down = if rev.meta.down.is_empty() {
                    "<base>".to_owned()
                } else {
                    rev.meta.down.join(", ")
                };
                let (from, to) = match step.direction {
                    crate::graph::Direction::Up => (down, rev.meta.id.clone()),
                    crate::graph::Direction::Down => (rev.meta.id.clone(), down),
                };
                eprintln!(
                    "Running {} {} -> {}, {}",
                    step.direction, from, to, rev.meta.message
                );
            }
            Some(a) => eprintln!("  done in {} ms", a.millis),
        },
    )
}

/// Guest log lines go to stderr, attributed to their revision.
pub(super) fn guest_log() -> LogSink {
    Arc::new(|revision: &str, level: LogLevel, message: &str| {
        let level = match level {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        eprintln!("  [{revision}] {level}: {message}");
    })
}

/// `down -> id (head) (label), message`, Alembic's history line.
pub(super) fn history_line(graph: &Graph, meta: &Metadata) -> String {
    let down = if meta.down.is_empty() {
        "<base>".to_owned()
    } else {
        meta.down.join(", ")
    };
    format!("{down} -> {}, {}", tagged(graph, &meta.id), meta.message)
}

/// `id (head) (label)`, Alembic's heads line.
pub(super) fn head_line(graph: &Graph, id: &str) -> String {
    let message = graph.get(id).map_or("", |n| n.meta.message.as_str());
    format!("{}, {message}", tagged(graph, id))
}

fn tagged(graph: &Graph, id: &str) -> String {
    let mut out = id.to_owned();
    let node = graph.get(id);
    if node.is_some_and(|n| n.children.is_empty()) {
        out.push_str(" (head)");
    }
    if node.is_some_and(|n| n.children.len() > 1) {
        out.push_str(" (branchpoint)");
    }
    if node.is_some_and(|n| n.meta.down.len() > 1) {
        out.push_str(" (mergepoint)");
    }
    for label in graph.labels_of(id) {
        out.push_str(&format!(" ({label})"));
    }
    out
}

/// A revision in full, under a heading line.
pub(super) fn describe(graph: &Graph, rev: &revision::Revision, heading: &str) -> String {
    let m = &rev.meta;
    let node = graph.get(&m.id);
    let mut out = format!("{heading}\n");
    out.push_str(&format!("  Rev: {}\n", tagged(graph, &m.id)));
    out.push_str(&format!(
        "  Parent: {}\n",
        if m.down.is_empty() {
            "<base>".into()
        } else {
            m.down.join(", ")
        }
    ));
    if let Some(n) = node.filter(|n| !n.children.is_empty()) {
        out.push_str(&format!("  Children: {}\n", n.children.join(", ")));
    }
    if !m.depends_on.is_empty() {
        out.push_str(&format!("  Depends on: {}\n", m.depends_on.join(", ")));
    }
    if !m.branch_labels.is_empty() {
        out.push_str(&format!("  Branch names: {}\n", m.branch_labels.join(", ")));
    }
    out.push_str(&format!("  Path: {}\n", rev.path.display()));
    out.push_str(&format!("  SHA-256: {}\n", rev.sha256));
    out.push_str(&format!("  Size: {} bytes\n", rev.size));
    out.push_str(&format!("  Created: {}\n", m.created));
    out.push_str(&format!("\n      {}\n", m.message));
    out
}

/// Draws the revisions (newest first) as lanes, one `*` per revision, `|` for the
/// branches it passes: a text view of forks and merges.
pub(super) fn text_graph(nodes: &[&crate::graph::Node], lines: &[String]) -> Vec<String> {
    let mut lanes: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (node, line) in nodes.iter().zip(lines) {
        let id = &node.meta.id;
        let col = match lanes.iter().position(|l| l == id) {
            Some(c) => c,
            None => {
                lanes.push(id.clone());
                lanes.len() - 1
            }
        };
        let marks: Vec<&str> = lanes
            .iter()
            .enumerate()
            .map(|(i, _)| if i == col { "*" } else { "|" })
            .collect();
        let prefix = marks.join(" ");
        let mut rows = line.lines();
        out.push(format!("{prefix}  {}", rows.next().unwrap_or_default()));
        // Lanes that waited for this revision join it; its parents take its place.
        lanes.retain(|l| l != id);
        let mut at = col.min(lanes.len());
        for parent in &node.meta.down {
            if !lanes.contains(parent) {
                lanes.insert(at, parent.clone());
                at += 1;
            }
        }
        let pad = "| ".repeat(lanes.len());
        for row in rows {
            out.push(format!("{pad} {row}"));
        }
    }
    out
}
