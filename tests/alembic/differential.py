"""Differential test: the same histories through real Alembic (oracle.py) and `retort`.

    python3 differential.py --retort BIN --component BARE.wasm [--random N --seed S]
                            [--fixtures FILE.json] [--keep-going]

BARE.wasm is a revision component without metadata (the test writes one); each revision
of a history is that component packed with `retort pack` under the revision's id,
parents, dependencies and labels, in files named so that both tools load them in the
same order. Each case runs its commands one after another on a fresh SQLite database in
each tool; after every command the two must agree on whether it was refused, the steps
applied in order, the revision ids printed (history, heads, show) and the version table.
A disagreement prints the history and the commands that reproduce it; the exit status
is the number of disagreeing cases (capped at 100).
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle  # noqa: E402


def retort_case(binary, bare, case):
    with tempfile.TemporaryDirectory() as root:
        components = os.path.join(root, "components")
        os.makedirs(components)
        with open(os.path.join(root, "retort.toml"), "w") as f:
            f.write(
                '[database]\nurl = "sqlite:db.sqlite"\n\n'
                '[migrations]\nsources = "sources"\ncomponents = "components"\n'
            )
        for n, rev in enumerate(case["revisions"]):
            argv = [binary, "pack", bare, "-o", os.path.join(components, f"{n:04d}_{rev['id']}.wasm"),
                    "--rev-id", rev["id"], "-m", rev["id"]]
            for d in rev.get("down", []):
                argv += ["--down", d]
            for d in rev.get("depends_on", []):
                argv += ["--depends-on", d]
            for label in rev.get("branch_labels", []):
                argv += ["--branch-label", label]
            packed = subprocess.run(argv, cwd=root, capture_output=True, text=True)
            if packed.returncode != 0:
                # A revision `retort pack` refuses (a self-loop): every command refused.
                return [{"ok": False, "steps": [], "lines": [], "versions": [],
                         "error": packed.stderr.strip()} for _ in case["commands"]]
        results = []
        for argv in case["commands"]:
            name, args = argv[0], argv[1:]
            if argv == ["reset"]:
                db = os.path.join(root, "db.sqlite")
                if os.path.exists(db):
                    os.remove(db)
                results.append({"ok": True, "steps": [], "lines": [], "versions": [],
                                "error": None})
                continue
            cmd = [binary, "--format", "json", name]
            if name == "history" and args:
                cmd += [f"--rev-range={args[0]}"]
            else:
                cmd += args
            done = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
            ok = done.returncode == 0
            steps, lines = [], []
            if ok:
                out = json.loads(done.stdout) if done.stdout.strip() else None
                if name in ("upgrade", "downgrade"):
                    steps = [[s["direction"], s["revision"]] for s in out or []]
                elif name in ("history", "heads"):
                    lines = [e.get("id") or e.get("revision") for e in out or []]
                elif name == "show":
                    items = out if isinstance(out, list) else [out]
                    lines = [i["metadata"]["id"] for i in items if i]
            results.append({
                "ok": ok,
                "steps": steps,
                "lines": lines,
                "versions": oracle.version_rows(os.path.join(root, "db.sqlite"), "retort_version"),
                "error": None if ok else done.stderr.strip(),
            })
        return results


# Alembic's own refusals; any other exception is Alembic failing inside.
REFUSALS = ("CommandError", "RevisionError", "ResolutionError", "MultipleHeads",
            "RangeNotAncestorError", "CycleDetected", "DependencyCycleDetected")


def crashed(result):
    """True when Alembic failed with an internal error rather than a refusal."""
    return not result["ok"] and not result["error"].startswith(tuple(r + ":" for r in REFUSALS))


def compare(argv, alembic, retort, unordered=False):
    """What differs between the two results of one command, or None (with `unordered`,
    steps and printed ids are compared as sets)."""
    name, args = argv[0], argv[1:]
    if alembic["ok"] != retort["ok"]:
        return (f"Alembic {'ran it' if alembic['ok'] else 'refused: ' + alembic['error']}; "
                f"retort {'ran it' if retort['ok'] else 'refused: ' + retort['error']}")
    diffs = []
    if name in ("upgrade", "downgrade") and alembic["ok"]:
        want = [s for s in alembic["steps"] if s[0] != "stamp"]
        got = retort["steps"]
        if unordered:
            want, got = sorted(want), sorted(got)
        if want != got:
            diffs.append(f"steps: Alembic {want}, retort {retort['steps']}")
    lines = (alembic["lines"], retort["lines"])
    if unordered or (name == "show" and args == ["current"]):
        # The rows in the order the table returns them: unspecified in SQL (Alembic
        # reads them unordered, Retort sorted).
        lines = tuple(sorted(x) for x in lines)
    if lines[0] != lines[1]:
        diffs.append(f"printed: Alembic {alembic['lines']}, retort {retort['lines']}")
    if alembic["versions"] != retort["versions"]:
        diffs.append(f"version table: Alembic {alembic['versions']}, retort {retort['versions']}")
    return "; ".join(diffs) or None


def ancestors(revisions, rid):
    """`rid` and everything below it by down revisions and dependencies."""
    by_id = {r["id"]: r for r in revisions}
    labels = {label: r["id"] for r in revisions for label in r.get("branch_labels", [])}
    seen, todo = set(), [rid]
    while todo:
        x = todo.pop()
        if x in seen or x not in by_id:
            continue
        seen.add(x)
        todo += by_id[x].get("down", [])
        todo += [labels.get(d, d) for d in by_id[x].get("depends_on", [])]
    return seen


def matrix_commands(revisions):
    """Commands for one graph of Alembic's test suite: targets of every form from base,
    from the heads and from each revision, history ranges, stamps and show, in groups
    that each start on a fresh database (`reset`)."""
    ids = [r["id"] for r in revisions]
    labels = sorted({label for r in revisions for label in r.get("branch_labels", [])})
    groups = [[["heads"], ["history"], ["show", "heads"], ["show", "head"], ["show", "base"]]]
    ups = ["head", "heads", "base", "+1", "+2", "base+1", "base+2", "head-1", "heads-1"]
    downs = ["base", "-1", "-2", "head-1", "base+1"]
    # Every form, spread over the ids (each id gets its plain form and two others).
    for k, i in enumerate(ids):
        up_forms = [f"{i}+1", f"{i}-1", f"{i}@head", f"{i}@base", f"{i}@+1"]
        down_forms = [f"{i}-1", f"{i}+1", f"{i}@-1", f"{i}@base"]
        ups += [i, up_forms[k % 5], up_forms[(k + 2) % 5]]
        downs += [i, down_forms[k % 4], down_forms[(k + 2) % 4]]
    for label in labels:
        ups += [label, f"{label}@head", f"{label}@heads", f"{label}@base", f"{label}@+1",
                f"{label}@+2"] + [f"{label}@{i}" for i in ids[::2]]
        downs += [f"{label}@-1", f"{label}@-2", f"{label}@base", f"{label}@head"] + [
            f"{label}@{i}" for i in ids[1::2]]
    # Read-only: every form shown, and as either side of a history range.
    groups.append([["show", t] for t in ups] + [["history", f":{t}"] for t in ups]
                  + [["history", f"{t}:"] for t in ups[::3]])
    for target in ups:
        groups.append([["upgrade", target]])
    for target in downs:
        groups.append([["upgrade", "heads"], ["downgrade", target]])
    groups.append([["upgrade", "heads"], ["history", "current:"], ["history", ":current"],
                   ["show", "current"]])
    for i in ids:
        groups.append([["upgrade", i], ["upgrade", "+1"], ["history", "current:"],
                       ["downgrade", "-1"], ["downgrade", "-1"]])
        groups.append([["stamp", i], ["stamp", "heads"], ["stamp", i], ["stamp", "base"]])
        for label in labels:
            groups.append([["upgrade", i], ["upgrade", f"{label}@+1"],
                           ["downgrade", f"{label}@-1"]])
    commands = []
    for group in groups:
        commands += group + [["reset"]]
    return commands


def random_id(rng, i):
    """Mostly unique ids; some share a four-character prefix; some have three characters
    (reachable only by their exact id)."""
    roll = rng.random()
    if roll < 0.2:
        return f"{rng.choice(['abcd', 'abce'])}{i:02d}"
    if roll < 0.3:
        return f"z{i:02d}"
    return f"r{i:02d}{rng.choice('abcdef')}{rng.choice('abcdef')}"


def random_spec(rng, ids, labels):
    """A revision argument of any form Alembic reads."""
    n = rng.choice([1, 1, 2, 3])
    rev = rng.choice(ids)
    label = rng.choice(labels) if labels else None
    forms = [
        lambda: rng.choice(["head", "heads", "base"]),
        lambda: f"+{n}", lambda: f"-{n}",
        lambda: rev, lambda: rev, lambda: rev[: rng.choice([3, 4, 5])],
        lambda: f"{rev}+{n}", lambda: f"{rev}-{n}",
        lambda: f"base+{n}", lambda: f"head-{n}", lambda: f"heads-{n}",
        lambda: f"{rev}@head", lambda: f"{rev}@base", lambda: f"{rev}@{rng.choice(ids)}",
        lambda: f"{rev}@+{n}", lambda: f"{rev}@-{n}",
    ]
    if label:
        forms += [
            lambda: f"{label}@head", lambda: f"{label}@heads", lambda: f"{label}@base",
            lambda: f"{label}@+{n}", lambda: f"{label}@-{n}", lambda: f"{label}@{rev}",
            lambda: f"{label}@{rev}+{n}", lambda: f"{label}@{rev}-{n}", lambda: label,
        ]
    return rng.choice(forms)()


def random_case(rng, n):
    """A random history of up to `n` revisions and a random sequence of commands."""
    revisions, labels = [], []
    for i in range(rng.randint(1, n)):
        rid = random_id(rng, i)
        ids = [r["id"] for r in revisions]
        roll = rng.random()
        if not ids or roll < 0.1:
            down = []
        elif roll < 0.25 and len(ids) >= 2:
            down = rng.sample(ids, rng.choice([2, 2, 3]) if len(ids) >= 3 else 2)
            # A merge of a revision with its own ancestor makes Alembic's version
            # table fail with a KeyError: not a history to compare on.
            if any(a in ancestors(revisions, b) for a in down for b in down if a != b):
                down = down[:1]
        else:
            down = [rng.choice(ids[-4:])]
        rev = {"id": rid, "down": down}
        if ids and rng.random() < 0.15:
            candidates = [x for x in ids if x not in down]
            if candidates:
                rev["depends_on"] = [rng.choice(candidates + labels)]
        if rng.random() < 0.2:
            label = rng.choice(["lb", "feat"]) + str(len(labels))
            labels.append(label)
            rev["branch_labels"] = [label]
        revisions.append(rev)
    ids = [r["id"] for r in revisions]
    spec = lambda: random_spec(rng, ids, labels)  # noqa: E731
    commands = [["heads"], ["history"]]
    for _ in range(rng.randint(3, 8)):
        kind = rng.choice(["upgrade", "upgrade", "upgrade", "downgrade", "downgrade",
                           "stamp", "show", "history"])
        if kind == "history":
            side = lambda: rng.choice(["", "", "current", spec()])  # noqa: E731
            commands.append([kind, f"{side()}:{side()}"])
        elif kind == "stamp":
            commands.append([kind] + [spec() for _ in range(rng.choice([1, 1, 2]))])
        elif kind == "show":
            commands.append([kind, rng.choice(["current", spec()])])
        else:
            commands.append([kind, spec()])
    commands.append(["upgrade", "heads"])
    commands.append(["downgrade", "base"])
    return {"revisions": revisions, "commands": commands}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--retort", required=True)
    p.add_argument("--component", required=True)
    p.add_argument("--fixtures")
    p.add_argument("--random", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-revisions", type=int, default=8)
    p.add_argument("--keep-going", action="store_true")
    p.add_argument("--only", type=int, help="run only this case and print both results")
    a = p.parse_args()
    cases = []
    if a.fixtures:
        with open(a.fixtures) as f:
            cases += json.load(f)["cases"]
    rng = random.Random(a.seed)
    cases += [random_case(rng, a.max_revisions) for _ in range(a.random)]
    failures = 0
    for number, case in enumerate(cases):
        if a.only is not None and number != a.only:
            continue
        if case.get("commands") == "matrix":
            case = dict(case, commands=matrix_commands(case["revisions"]))
        alembic = oracle.run_case(case)
        retort = retort_case(a.retort, a.component, case)
        if a.only is not None:
            print(json.dumps(case["revisions"]))
            for argv, x, y in zip(case["commands"], alembic, retort):
                print(" ".join(argv))
                print("   alembic:", json.dumps({k: x[k] for k in ("ok", "steps", "lines", "versions", "error")}))
                print("   retort: ", json.dumps({k: y[k] for k in ("ok", "steps", "lines", "versions", "error")}))
        if not alembic[0]["ok"] and case["commands"][0] == ["heads"]:
            # A history Alembic cannot load (a cycle, a label used twice): Retort must
            # refuse every command (Alembic still runs the few that never read it).
            ran = [argv for argv, y in zip(case["commands"], retort)
                   if y["ok"] and argv != ["reset"]]
            if ran:
                failures += 1
                print(f"case {number} ({case.get('name', 'random')}): Alembic cannot load "
                      f"it ({alembic[0]['error']}); retort ran {ran[0]}")
            continue
        # Alembic orders several dependencies of one revision as a Python set does
        # (differently from run to run); there only the sets are compared.
        unordered = any(len(r.get("depends_on", [])) > 1 for r in case["revisions"])
        skipping = False
        for i, (argv, x, y) in enumerate(zip(case["commands"], alembic, retort)):
            if skipping:
                skipping = argv != ["reset"]
                continue
            if x.get("ambiguous") and not y["ok"]:
                # Retort's one deliberate difference: it refuses what Alembic guesses
                # (`downgrade -1` from several heads); the two part ways until the next
                # reset.
                skipping = True
                continue
            if crashed(x):
                # Alembic failed inside (an AssertionError or KeyError: its bugs),
                # sometimes after writing part of the work. Retort may refuse cleanly or
                # finish what Alembic began (the steps Alembic took come first); either
                # way the two states part here (docs/graph.md).
                done = [s for s in x["steps"] if s[0] != "stamp"]
                if y["ok"] and y["steps"][: len(done)] != done:
                    failures += 1
                    print(f"case {number} ({case.get('name', 'random')}) disagrees at "
                          f"`{' '.join(argv)}`: Alembic failed inside ({x['error']}) after "
                          f"{done}; retort ran {y['steps']}")
                    print("  history (load order):", json.dumps(case["revisions"]))
                    break
                skipping = True
                continue
            diff = compare(argv, x, y, unordered)
            if diff:
                failures += 1
                print(f"case {number} ({case.get('name', 'random')}) disagrees at "
                      f"`{' '.join(argv)}`: {diff}")
                print("  history (load order):", json.dumps(case["revisions"]))
                first = max((j + 1 for j, c in enumerate(case["commands"][:i]) if c == ["reset"]),
                            default=0)
                print("  commands:", " ; ".join(" ".join(c) for c in case["commands"][first: i + 1]))
                break
        if failures and not a.keep_going:
            break
    print(f"{len(cases)} cases, {failures} disagreeing")
    sys.exit(min(failures, 100))


if __name__ == "__main__":
    main()
