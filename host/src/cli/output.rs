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

/// `Running up a -> b, message`, Alembic's line for a step.
fn running_line(step: &crate::graph::Step, rev: &revision::Revision) -> String {
    let down = if rev.meta.down.is_empty() {
        "<base>".to_owned()
    } else {
        rev.meta.down.join(", ")
    };
    let (from, to) = match step.direction {
        crate::graph::Direction::Up => (down, rev.meta.id.clone()),
        crate::graph::Direction::Down => (rev.meta.id.clone(), down),
    };
    format!(
        "Running {} {} -> {}, {}",
        step.direction, from, to, rev.meta.message
    )
}

/// What an upgrade or downgrade shows while it runs.
struct Display {
    /// On a terminal: revision N of M, the running op, rows read, elapsed time.
    bar: Option<indicatif::ProgressBar>,
    tty: bool,
    quiet: bool,
    total: usize,
    step: usize,
    revision: String,
    op: String,
    rows: u64,
}

impl Display {
    /// A line that stays (above the bar on a terminal).
    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn refresh(&self) {
        if let Some(bar) = &self.bar {
            bar.set_position(self.step.saturating_sub(1) as u64);
            // What changes first: a narrow terminal cuts the end of the line.
            let mut msg = format!("revision {} of {}", self.step, self.total);
            if !self.op.is_empty() {
                msg.push_str(&format!(" · {}", self.op));
            }
            if self.rows > 0 {
                msg.push_str(&format!(" · {} rows read", self.rows));
            }
            msg.push_str(&format!(" · {}", self.revision));
            bar.set_message(msg);
        }
    }
}

/// A bar of `len` on stderr, redrawn five times a second (the elapsed time moves while
/// a long op runs).
fn bar(len: usize, template: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64)
        .with_style(indicatif::ProgressStyle::with_template(template).expect("a valid template"));
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Ends the display when the run ends, however it ends (the bar is cleared before an
/// error is printed).
pub(super) struct RunDisplay(Arc<std::sync::Mutex<Display>>);

impl Drop for RunDisplay {
    fn drop(&mut self) {
        if let Ok(display) = self.0.lock()
            && let Some(bar) = &display.bar
        {
            bar.finish_and_clear();
        }
    }
}

/// The progress of an upgrade or downgrade on stderr. Every step is announced with
/// Alembic's line (`Running up a -> b, message`, then `  done in N ms`); on a terminal a
/// bar below them shows revision N of M, the op running, the rows its cursors have read
/// and the elapsed time. `quiet`: nothing of it. `verbose`: each SQL statement too.
pub(super) fn run_display(
    quiet: bool,
    verbose: bool,
) -> (
    crate::project::ProgressFn,
    Option<crate::ActivitySink>,
    RunDisplay,
) {
    use std::io::IsTerminal;
    let display = Arc::new(std::sync::Mutex::new(Display {
        bar: None,
        tty: std::io::stderr().is_terminal(),
        quiet,
        total: 0,
        step: 0,
        revision: String::new(),
        op: String::new(),
        rows: 0,
    }));
    let shared = display.clone();
    let progress: crate::project::ProgressFn = Arc::new(
        move |step: &crate::graph::Step, rev: &revision::Revision, done: Option<&Applied>| {
            let Ok(mut d) = shared.lock() else { return };
            if d.quiet {
                return;
            }
            match done {
                None => {
                    d.step += 1;
                    d.revision = format!("{} {}", rev.meta.id, rev.meta.message);
                    d.op.clear();
                    d.rows = 0;
                    d.line(&running_line(step, rev));
                    d.refresh();
                }
                Some(a) => d.line(&format!("  done in {} ms", a.millis)),
            }
        },
    );
    let shared = display.clone();
    let activity: crate::ActivitySink = Arc::new(move |_revision, what| {
        let Ok(mut d) = shared.lock() else { return };
        match what {
            crate::Activity::Plan(total) => {
                d.total = total;
                if d.tty && !d.quiet && total > 0 {
                    d.bar = Some(bar(total, "[{elapsed_precise}] {bar:20} {wide_msg}"));
                }
            }
            crate::Activity::Op(op) => {
                d.op = op.to_owned();
                d.refresh();
            }
            crate::Activity::Rows(rows) => {
                d.rows = rows;
                d.refresh();
            }
            crate::Activity::Statement(sql) if verbose => d.line(&format!("    SQL: {sql}")),
            crate::Activity::Statement(_) => {}
        }
    });
    (progress, Some(activity), RunDisplay(display))
}

/// `retort build` on a terminal: a bar of sources built, naming the one in the works
/// (cargo's own output for Rust revisions prints above it). Nothing elsewhere.
pub(super) struct BuildDisplay(Option<indicatif::ProgressBar>);

impl BuildDisplay {
    pub fn new(quiet: bool) -> Self {
        use std::io::IsTerminal;
        BuildDisplay(
            (!quiet && std::io::stderr().is_terminal())
                .then(|| bar(0, "[{elapsed_precise}] {bar:20} {pos}/{len} {wide_msg}")),
        )
    }

    pub fn step(&self, step: crate::build::BuildStep<'_>) {
        let Some(bar) = &self.0 else { return };
        match step {
            crate::build::BuildStep::Sources(n) => bar.set_length(n as u64),
            crate::build::BuildStep::Building { what, lang } => {
                bar.set_message(format!("building {what} ({lang:?})"))
            }
            crate::build::BuildStep::Built(n) => bar.inc(n as u64),
        }
    }
}

impl Drop for BuildDisplay {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
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

/// `history --graph`: what the picture is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// A Mermaid flowchart (renders on GitHub, in mermaid-cli, ...).
    Mermaid,
    /// Graphviz dot (`dot -Tsvg`).
    Dot,
}

/// The revisions `nodes` as a picture: one box per revision (id, message, branch labels,
/// head/merge marks), an edge from each down revision (solid) and from each dependency
/// (dashed, "depends on"), oldest at the top; `current` revisions are drawn bold and
/// green. Only edges between the revisions shown are drawn (a `-r` range).
pub(super) fn picture(
    format: GraphFormat,
    graph: &Graph,
    nodes: &[&crate::graph::Node],
    current: &[String],
) -> String {
    let shown: std::collections::HashSet<&str> = nodes.iter().map(|n| n.meta.id.as_str()).collect();
    // Oldest first, so that renderers that keep input order draw base at the top.
    let ordered: Vec<&crate::graph::Node> = nodes.iter().rev().copied().collect();
    let label = |node: &crate::graph::Node| -> Vec<String> {
        let mut lines = vec![tagged(graph, &node.meta.id)];
        if !node.meta.message.is_empty() {
            lines.push(node.meta.message.clone());
        }
        if current.contains(&node.meta.id) {
            lines.push("(current)".into());
        }
        lines
    };
    // Down revisions (solid), then dependencies (dashed), into each revision shown.
    let edges: Vec<(&str, &str, bool)> = ordered
        .iter()
        .flat_map(|node| {
            let downs = node.meta.down.iter().map(|d| (d, false));
            let deps = node.dependencies.iter().map(|d| (d, true));
            downs
                .chain(deps)
                .filter(|(from, _)| shown.contains(from.as_str()))
                .map(|(from, dashed)| (from.as_str(), node.meta.id.as_str(), dashed))
        })
        .collect();
    let mut out = String::new();
    match format {
        GraphFormat::Mermaid => {
            let key = |id: &str| format!("r_{}", id.replace('-', "_"));
            // Mermaid's entity codes keep quotes and brackets from ending the label.
            let text = |t: &str| {
                t.replace('&', "#amp;")
                    .replace('"', "#quot;")
                    .replace('<', "#lt;")
                    .replace('>', "#gt;")
            };
            out.push_str("flowchart TD\n");
            for node in &ordered {
                let lines: Vec<String> = label(node).iter().map(|l| text(l)).collect();
                out.push_str(&format!(
                    "    {}[\"{}\"]\n",
                    key(&node.meta.id),
                    lines.join("<br/>")
                ));
            }
            for &(from, to, dashed) in &edges {
                let arrow = if dashed { "-. depends on .->" } else { "-->" };
                out.push_str(&format!("    {} {arrow} {}\n", key(from), key(to)));
            }
            let marked: Vec<String> = ordered
                .iter()
                .filter(|n| current.contains(&n.meta.id))
                .map(|n| key(&n.meta.id))
                .collect();
            if !marked.is_empty() {
                out.push_str("    classDef current fill:#d4f7d4,stroke:#1a7f1a,stroke-width:3px\n");
                out.push_str(&format!("    class {} current\n", marked.join(",")));
            }
        }
        GraphFormat::Dot => {
            let quote = |t: &str| format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\""));
            out.push_str("digraph history {\n");
            out.push_str("    node [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
            out.push_str("    edge [fontname=\"Helvetica\", fontsize=10];\n");
            for node in &ordered {
                let lines: Vec<String> = label(node)
                    .iter()
                    .map(|l| l.replace('\\', "\\\\").replace('"', "\\\""))
                    .collect();
                let mut attrs = format!("label=\"{}\"", lines.join("\\n"));
                if current.contains(&node.meta.id) {
                    attrs.push_str(
                        ", style=\"rounded,filled,bold\", fillcolor=\"#d4f7d4\", penwidth=3",
                    );
                }
                out.push_str(&format!("    {} [{attrs}];\n", quote(&node.meta.id)));
            }
            for &(from, to, dashed) in &edges {
                let style = if dashed {
                    " [style=dashed, label=\"depends on\"]"
                } else {
                    ""
                };
                out.push_str(&format!("    {} -> {}{style};\n", quote(from), quote(to)));
            }
            out.push_str("}\n");
        }
    }
    out
}
