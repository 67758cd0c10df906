"""Runs revision histories through real Alembic and prints what it did, as JSON.

The differential tests (tests/cli/alembic.rs) feed the same histories to `retort` and
compare. Input on stdin: {"cases": [{"revisions": [...], "commands": [[...], ...]}]},
each revision {"id", "down": [...], "depends_on": [...], "branch_labels": [...]} in the
order their files load (Alembic sorts file names; so does Retort). Each case gets a new
SQLite database; its commands run one after another on it (`["reset"]` deletes it). For each command the output
holds: "ok" (false when Alembic refused), "steps" (["up"|"down"|"stamp", revision] in the
order applied), "lines" (revision ids printed by history/heads/show, in order) and
"versions" (the version table afterwards, sorted).
"""

import contextlib
import io
import json
import os
import re
import sqlite3
import sys
import tempfile
import warnings

from alembic import command
from alembic.config import Config

ENV_PY = '''
from alembic import context
from sqlalchemy import create_engine

config = context.config
engine = create_engine(config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=None,
        on_version_apply=config.attributes["on_version_apply"],
    )
    with context.begin_transaction():
        context.run_migrations()
'''


def literal(ids):
    if not ids:
        return "None"
    if len(ids) == 1:
        return repr(ids[0])
    return repr(tuple(ids))


def write_project(root, revisions):
    versions = os.path.join(root, "versions")
    os.makedirs(versions)
    with open(os.path.join(root, "env.py"), "w") as f:
        f.write(ENV_PY)
    for n, rev in enumerate(revisions):
        body = (
            f'"""{rev["id"]}"""\n'
            f"revision = {rev['id']!r}\n"
            f"down_revision = {literal(rev.get('down', []))}\n"
            f"branch_labels = {literal(rev.get('branch_labels', []))}\n"
            f"depends_on = {literal(rev.get('depends_on', []))}\n"
            "def upgrade():\n    pass\n"
            "def downgrade():\n    pass\n"
        )
        with open(os.path.join(versions, f"{n:04d}_{rev['id']}.py"), "w") as f:
            f.write(body)


def version_rows(db, table="alembic_version"):
    """The version table's rows, sorted (none when the table or file is missing)."""
    if not os.path.exists(db):
        return []
    con = sqlite3.connect(db)
    try:
        rows = con.execute(f"SELECT version_num FROM {table}").fetchall()
    except sqlite3.OperationalError:
        rows = []
    finally:
        con.close()
    return sorted(r[0] for r in rows)


def run_command(cfg, argv):
    """Runs one command; returns (ok, printed text, warnings)."""
    name, args = argv[0], argv[1:]
    out = io.StringIO()
    cfg.stdout = out
    caught = []
    try:
        with contextlib.redirect_stdout(out), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if name == "upgrade":
                command.upgrade(cfg, args[0])
            elif name == "downgrade":
                command.downgrade(cfg, args[0])
            elif name == "stamp":
                command.stamp(cfg, args if len(args) > 1 else args[0])
            elif name == "history":
                command.history(cfg, args[0] if args else None)
            elif name == "heads":
                command.heads(cfg)
            elif name == "show":
                command.show(cfg, args[0])
            else:
                raise SystemExit(f"unknown command {name}")
    except Exception as e:  # noqa: BLE001 - any refusal counts
        return False, f"{type(e).__name__}: {e}", [str(w.message) for w in caught]
    return True, out.getvalue(), [str(w.message) for w in caught]


def printed_ids(name, text):
    ids = []
    for line in text.splitlines():
        if name == "history":
            m = re.search(r"-> (\S+?)(?: \(|,)", line)
        elif name == "heads":
            m = re.match(r"(\S+)", line)
        elif name == "show":
            m = re.match(r"Rev: (\S+)", line)
        else:
            m = None
        if m:
            ids.append(m.group(1))
    return ids


def run_case(case):
    with tempfile.TemporaryDirectory() as root:
        write_project(root, case["revisions"])
        db = os.path.join(root, "db.sqlite")
        cfg = Config()
        cfg.set_main_option("script_location", root)
        cfg.set_main_option("sqlalchemy.url", f"sqlite:///{db}")
        results = []
        for argv in case["commands"]:
            if argv == ["reset"]:
                # A fresh database, for the next group of commands.
                if os.path.exists(db):
                    os.remove(db)
                results.append({"ok": True, "steps": [], "lines": [], "versions": [],
                                "error": None, "ambiguous": False})
                continue
            steps = []

            def on_apply(ctx, step, heads, run_args):
                kind = "stamp" if step.is_stamp else ("up" if step.is_upgrade else "down")
                steps.append([kind, step.up_revision_id])

            cfg.attributes["on_version_apply"] = on_apply
            ok, text, warned = run_command(cfg, argv)
            results.append(
                {
                    "ok": ok,
                    "steps": steps,
                    "lines": printed_ids(argv[0], text) if ok else [],
                    "versions": version_rows(db),
                    "error": None if ok else text,
                    # Alembic guesses where Retort refuses on purpose (docs/graph.md).
                    "ambiguous": any("is ambiguous" in w for w in warned),
                }
            )
        return results


def main():
    cases = json.load(sys.stdin)["cases"]
    json.dump([run_case(c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
