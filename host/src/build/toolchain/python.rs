//! Python revisions, built with componentize-py (PyPI).

use std::path::Path;
use std::process::Command;

use super::{Context, Toolchain, one_by_one, run, tool, write};
use crate::build::{BuildError, Lang, Source};

/// The scaffold of a new Python revision (`{message}` and `{front_matter}` are
/// filled in).
pub const TEMPLATE: &str = r#"# {message}
#
# ```toml
{front_matter}# ```
#
# Built by `retort build` with componentize-py. The host's ops are in
# wit_world.imports.op, values are wit_world.imports.types.Value_*; raise
# componentize_py_types.Err("why") to fail (see docs/languages/python.md).

import wit_world
from wit_world.imports import op, types
from componentize_py_types import Err, Some


class WitWorld(wit_world.WitWorld):
    def upgrade(self) -> None:
{upgrade}

    def downgrade(self) -> None:
{downgrade}
"#;

/// What the template's bodies hold when nothing is generated.
pub const EXAMPLE: [&str; 2] = [
    "        # Replace this example with the revision's changes (uncommented, it runs as is):\n        # op.execute(\"CREATE TABLE accounts (id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL)\", [])\n        # op.execute(\"ALTER TABLE accounts ADD COLUMN phone VARCHAR(20)\", [])\n        pass",
    "        # The exact inverse of upgrade, last change first:\n        # op.execute(\"ALTER TABLE accounts DROP COLUMN phone\", [])\n        # op.execute(\"DROP TABLE accounts\", [])\n        pass",
];

/// The Python toolchain (componentize-py).
pub struct Python;

impl Toolchain for Python {
    fn build(&self, sources: &[&Source], ctx: &Context<'_>) -> Result<Vec<Vec<u8>>, BuildError> {
        one_by_one(sources, ctx, |work: &Path, module: &str, text: &[u8]| {
            let lang = Lang::Python;
            let quiet = ctx.quiet;
            let program = tool(
                lang,
                "RETORT_COMPONENTIZE_PY",
                &["componentize-py"],
                "install it with `pip install componentize-py==0.25.1` (scripts/setup-languages.sh does)",
            )?;
            write(&work.join(format!("{module}.py")), text)?;
            let mut cmd = Command::new(&program);
            cmd.current_dir(work)
                .args(["-d", "wit", "-w", "revision", "componentize", module])
                .args(["-p", ".", "-o", "component.wasm"]);
            run(cmd, &program, quiet)?;
            Ok(())
        })
    }
}
