"""Writes suite.json: every revision graph of Alembic's own tests/test_revision.py and
tests/test_version_traversal.py, as differential cases (tests/alembic/differential.py
runs each with the command matrix of `matrix_commands`).

    python3 extract_suite.py ALEMBIC_SOURCE_DIR > suite.json

ALEMBIC_SOURCE_DIR is an unpacked Alembic source distribution of the pinned version
(`pip download alembic==1.20.1 --no-binary :all: --no-deps`, then untar). Graphs of
test_revision.py are read from each `RevisionMap(lambda: [Revision(...), ...])` in the
file, in list order. Graphs of test_version_traversal.py are made by running each test
class's `setup_class` (real Alembic writes the revision scripts) and reading them back
in the order Alembic loads them. The output is committed; this script documents where
it came from and regenerates it.
"""

import ast
import importlib
import json
import os
import sys


class Rev:
    """Stands in for alembic's Revision while evaluating a test's list literal."""

    def __init__(self, revision, down_revision, dependencies=None, branch_labels=None):
        self.revision = revision
        self.down = down_revision
        self.deps = dependencies
        self.labels = branch_labels


def as_list(x):
    if x is None:
        return []
    if isinstance(x, str):
        return [x]
    return list(x)


def revision_graphs(path):
    """Each `RevisionMap(...)` of the file whose revisions are literals: a lambda's
    list, a local `fn()` returning one, or revisions assigned to local names first."""
    tree = ast.parse(open(path).read())
    graphs = []
    for cls in [n for n in tree.body if isinstance(n, ast.ClassDef)]:
        for method in [n for n in cls.body if isinstance(n, ast.FunctionDef)]:
            scope = {"Revision": Rev}
            for stmt in ast.walk(method):
                try:
                    if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                            and isinstance(stmt.targets[0], ast.Name)
                            and isinstance(stmt.value, ast.Call)
                            and getattr(stmt.value.func, "id", None) == "Revision"):
                        scope[stmt.targets[0].id] = eval(
                            compile(ast.Expression(stmt.value), path, "eval"), scope)
                    elif (isinstance(stmt, ast.FunctionDef) and len(stmt.body) == 1
                            and isinstance(stmt.body[0], ast.Return)):
                        body = stmt.body[0].value
                        scope[stmt.name] = (lambda b: lambda: eval(
                            compile(ast.Expression(b), path, "eval"), scope))(body)
                except Exception:  # noqa: BLE001 - not literal: skip it
                    pass
            for node in ast.walk(method):
                if not (isinstance(node, ast.Call)
                        and getattr(node.func, "id", None) == "RevisionMap" and node.args):
                    continue
                arg = node.args[0]
                try:
                    if isinstance(arg, ast.Lambda):
                        revs = eval(compile(ast.Expression(arg.body), path, "eval"), scope)
                    else:
                        revs = scope[arg.id]()
                except Exception:  # noqa: BLE001 - built from test data: skip it
                    continue
                graphs.append({
                    "name": f"test_revision.py:{cls.name}.{method.name}:{node.lineno}",
                    "revisions": [
                        {"id": r.revision, "down": as_list(r.down),
                         "depends_on": as_list(r.deps), "branch_labels": as_list(r.labels)}
                        for r in revs
                    ],
                })
    return graphs


def traversal_graphs(source):
    sys.path.insert(0, source)
    os.chdir(source)
    module = importlib.import_module("tests.test_version_traversal")
    from alembic.testing.env import clear_staging_env

    graphs = []
    for name in dir(module):
        cls = getattr(module, name)
        if not (isinstance(cls, type) and "setup_class" in vars(cls)):
            continue
        cls.setup_class()
        try:
            revision_map = cls.env.revision_map._revision_map
            seen, revisions = set(), []
            for key, script in revision_map.items():
                if script is None or key != script.revision or key in seen:
                    continue
                seen.add(key)
                revisions.append({
                    "id": script.revision,
                    "down": as_list(script.down_revision),
                    "depends_on": as_list(script.dependencies),
                    "branch_labels": sorted(script._orig_branch_labels),
                })
            graphs.append({"name": f"test_version_traversal.py:{name}", "revisions": revisions})
        finally:
            clear_staging_env()
    return graphs


def main():
    source = os.path.abspath(sys.argv[1])
    graphs = revision_graphs(os.path.join(source, "tests", "test_revision.py"))
    devnull = open(os.devnull, "w")
    stdout, sys.stdout = sys.stdout, devnull
    try:
        graphs += traversal_graphs(source)
    finally:
        sys.stdout = stdout
    for g in graphs:
        for r in g["revisions"]:
            for key in ("down", "depends_on", "branch_labels"):
                if not r[key]:
                    del r[key]
        g["commands"] = "matrix"
    json.dump({"source": "alembic 1.20.1 tests", "cases": graphs}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
