//! JavaScript revisions, built with componentize-js (npm, StarlingMonkey).

use std::path::Path;
use std::process::Command;

use super::{Context, Toolchain, one_by_one, run, tool, write};
use crate::build::{BuildError, Lang, Source};

/// The scaffold of a new JavaScript revision (`{message}` and `{front_matter}` are
/// filled in).
pub const TEMPLATE: &str = r#"// {message}
//
// ```toml
{front_matter}// ```
//
// Built by `retort build` with componentize-js. Values are { tag: 's64', val: 1n },
// { tag: 'text', val: 'x' }, ...; throw a string to fail (see docs/languages/js.md).

import * as op from 'retort:migration/op@0.1.0';

export function upgrade() {
{upgrade}
}

export function downgrade() {
{downgrade}
}
"#;

/// What the template's bodies hold when nothing is generated.
pub const EXAMPLE: [&str; 2] = [
    "  // Replace this example with the revision's changes (uncommented, it runs as is):\n  // op.execute('CREATE TABLE accounts (id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL)', []);\n  // op.execute('ALTER TABLE accounts ADD COLUMN phone VARCHAR(20)', []);",
    "  // The exact inverse of upgrade, last change first:\n  // op.execute('ALTER TABLE accounts DROP COLUMN phone', []);\n  // op.execute('DROP TABLE accounts', []);",
];

/// The JavaScript toolchain (componentize-js).
pub struct Js;

impl Toolchain for Js {
    fn build(&self, sources: &[&Source], ctx: &Context<'_>) -> Result<Vec<Vec<u8>>, BuildError> {
        one_by_one(sources, ctx, |work: &Path, module: &str, text: &[u8]| {
            let lang = Lang::Js;
            let quiet = ctx.quiet;
            let program = tool(
                lang,
                "RETORT_COMPONENTIZE_JS",
                &["componentize-js"],
                "install it with `npm install -g @bytecodealliance/componentize-js@0.23.0` (scripts/setup-languages.sh does)",
            )?;
            write(&work.join(format!("{module}.js")), text)?;
            let mut cmd = Command::new(&program);
            // No wasi:http and no fetch event: a revision gets only what the host links.
            cmd.current_dir(work)
                .arg(format!("{module}.js"))
                .args(["--wit", "wit", "--world-name", "revision"])
                .args(["-d", "http", "-d", "fetch-event", "-o", "component.wasm"]);
            run(cmd, &program, quiet)?;
            Ok(())
        })
    }
}
