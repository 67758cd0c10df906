//! The graph, case by case: shapes, identifiers, plans, ledger heads and errors.

use std::collections::BTreeSet;

use super::*;

/// `"b:a"` is revision b after a; `"m:b,c"` a merge; `"x:"` a base. Suffixes:
/// `"c:a|dep=b"` depends on b, `"c:a|label=feature"` declares a branch label.
fn graph(spec: &[&str]) -> Graph {
    try_graph(spec).unwrap()
}

fn try_graph(spec: &[&str]) -> Result<Graph, GraphError> {
    Graph::new(spec.iter().map(|s| {
        let mut parts = s.split('|');
        let (id, down) = parts.next().unwrap().split_once(':').unwrap();
        let mut meta = Metadata::new(id, format!("rev {id}"));
        meta.down = down
            .split(',')
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect();
        for extra in parts {
            match extra.split_once('=').unwrap() {
                ("dep", d) => meta.depends_on.push(d.into()),
                ("label", l) => meta.branch_labels.push(l.into()),
                other => panic!("bad spec {other:?}"),
            }
        }
        meta
    }))
}

fn v(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn up(g: &Graph, current: &[&str], spec: &str) -> Result<Vec<String>, GraphError> {
    let current = v(current);
    let target = g.upgrade_target(spec, &current)?;
    Ok(plan_upgrade(g, &current, &target)
        .into_iter()
        .map(|s| s.revision)
        .collect())
}

fn down(g: &Graph, current: &[&str], spec: &str) -> Result<Vec<String>, GraphError> {
    let remove = g.downgrade_removal(spec, &v(current))?;
    Ok(plan_downgrade(g, &v(current), &remove)
        .into_iter()
        .map(|s| s.revision)
        .collect())
}

/// Applies a plan step by step and returns the version table's rows after it.
fn ledger(g: &Graph, current: &[&str], steps: &[String], direction: Direction) -> Vec<String> {
    let mut heads = v(current);
    for s in steps {
        heads = heads_after(
            g,
            &heads,
            &Step {
                revision: s.clone(),
                direction,
            },
        );
    }
    heads
}

/// (shape, current heads, identifier, expected plan)
type Case = (
    &'static [&'static str],
    &'static [&'static str],
    &'static str,
    &'static [&'static str],
);

const LINEAR: &[&str] = &["a1:", "b2:a1", "c3:b2", "d4:c3"];
/// a -> b -> {c, d}; c -> e; m merges e and d.
const DIAMOND: &[&str] = &["a:", "b:a", "c:b", "d:b", "e:c", "m:e,d"];
/// Two bases, each with a labelled branch; n2 depends on s1 across branches.
const TWO_BASES: &[&str] = &[
    "n1:|label=net",
    "n2:n1|dep=s1",
    "s1:|label=shop",
    "s2:s1",
    "s3:s2",
];
/// Three heads merged at once.
const THREE_WAY: &[&str] = &["r:", "x:r", "y:r", "z:r", "w:x,y,z"];

#[test]
fn upgrade_plans_for_every_identifier() {
    let cases: &[Case] = &[
        (LINEAR, &[], "head", &["a1", "b2", "c3", "d4"]),
        (LINEAR, &[], "heads", &["a1", "b2", "c3", "d4"]),
        (LINEAR, &[], "+1", &["a1"]),
        (LINEAR, &["a1"], "+2", &["b2", "c3"]),
        (LINEAR, &["a1"], "b2+1", &["b2", "c3"]),
        (LINEAR, &[], "c3", &["a1", "b2", "c3"]),
        (LINEAR, &[], "c3-1", &["a1", "b2"]),
        (LINEAR, &[], "base+3", &["a1", "b2", "c3"]),
        (LINEAR, &["d4"], "head", &[]),
        (LINEAR, &[], "base", &[]),
        // Alembic's order (each checked against Alembic 1.20.1): the walk down from the
        // target takes a merge's parents in order, one branch at a time, and upgrades
        // run it in reverse.
        (DIAMOND, &[], "m", &["a", "b", "d", "c", "e", "m"]),
        (DIAMOND, &["b"], "e", &["c", "e"]),
        (DIAMOND, &["e"], "heads", &["d", "m"]),
        (THREE_WAY, &[], "head", &["r", "z", "y", "x", "w"]),
        (THREE_WAY, &["x"], "w", &["z", "y", "w"]),
        // Dependencies come first, across branches.
        (TWO_BASES, &[], "n2", &["s1", "n1", "n2"]),
        (TWO_BASES, &[], "heads", &["s1", "s2", "s3", "n1", "n2"]),
        (TWO_BASES, &[], "shop@head", &["s1", "s2", "s3"]),
        (TWO_BASES, &[], "net@head", &["s1", "n1", "n2"]),
        (TWO_BASES, &["s1"], "shop@+1", &["s2"]),
        (TWO_BASES, &[], "shop@+2", &["s1", "s2"]),
        (TWO_BASES, &[], "shop@s2", &["s1", "s2"]),
        // REV@X reads REV as the branch and X as the revision on it (Alembic).
        (TWO_BASES, &[], "s2@shop", &["s1"]),
        (TWO_BASES, &[], "s3@s2", &["s1", "s2"]),
        (TWO_BASES, &[], "shop", &["s1"]),
        (TWO_BASES, &["n1", "s1"], "net@+1", &["n2"]),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(shape, current, spec, expected)| {
            let got = up(&graph(shape), current, spec).unwrap_or_else(|e| vec![e.to_string()]);
            (got != v(expected))
                .then(|| format!("upgrade {spec} from {current:?} in {shape:?}: {got:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn downgrade_plans_for_every_identifier() {
    let cases: &[Case] = &[
        (LINEAR, &["d4"], "-1", &["d4"]),
        (LINEAR, &["d4"], "-2", &["d4", "c3"]),
        (LINEAR, &["d4"], "-4", &["d4", "c3", "b2", "a1"]),
        (LINEAR, &["d4"], "b2", &["d4", "c3"]),
        (LINEAR, &["d4"], "d4-3", &["d4", "c3", "b2"]),
        (LINEAR, &["d4"], "base", &["d4", "c3", "b2", "a1"]),
        (LINEAR, &["b2"], "b2", &[]),
        // Downgrading one branch leaves the other alone.
        (DIAMOND, &["d", "e"], "b", &["d", "e", "c"]),
        (DIAMOND, &["d", "e"], "c", &["e"]),
        (DIAMOND, &["m"], "e", &["m"]),
        (THREE_WAY, &["w"], "x", &["w"]),
        // A dependency's dependents go with it.
        (
            TWO_BASES,
            &["n2", "s3"],
            "shop@base",
            &["n2", "s3", "s2", "s1"],
        ),
        (TWO_BASES, &["n2", "s3"], "net@base", &["n2", "n1"]),
        (TWO_BASES, &["n2", "s3"], "shop@-1", &["s3"]),
        (
            TWO_BASES,
            &["n2", "s3"],
            "shop@-3",
            &["n2", "s3", "s2", "s1"],
        ),
        (TWO_BASES, &["n2", "s3"], "s1", &["s3", "s2"]),
        (TWO_BASES, &["n2", "s3"], "net@n1", &["n2"]),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(shape, current, spec, expected)| {
            let got = down(&graph(shape), current, spec).unwrap_or_else(|e| vec![e.to_string()]);
            (got != v(expected))
                .then(|| format!("downgrade {spec} from {current:?} in {shape:?}: {got:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_version_table_follows_alembic() {
    // (shape, start, direction, plan, rows after)
    let g = graph(DIAMOND);
    let steps = up(&g, &[], "c").unwrap();
    assert_eq!(ledger(&g, &[], &steps, Direction::Up), ["c"]);
    // A second branch adds a row; a merge replaces both.
    assert_eq!(ledger(&g, &["c"], &v(&["d"]), Direction::Up), ["c", "d"]);
    assert_eq!(
        ledger(&g, &["c", "d"], &v(&["e", "m"]), Direction::Up),
        ["m"]
    );
    // Un-merging restores both rows; downgrading a branch tip restores its parent only
    // when no other head includes it.
    assert_eq!(ledger(&g, &["m"], &v(&["m"]), Direction::Down), ["d", "e"]);
    assert_eq!(ledger(&g, &["d", "e"], &v(&["d"]), Direction::Down), ["e"]);
    let g = graph(THREE_WAY);
    assert_eq!(
        ledger(&g, &["x", "y", "z"], &v(&["w"]), Direction::Up),
        ["w"]
    );
    assert_eq!(
        ledger(&g, &["w"], &v(&["w"]), Direction::Down),
        ["x", "y", "z"]
    );
    // A dependency is not a parent: it stays a head of its own branch.
    let g = graph(TWO_BASES);
    let steps = up(&g, &[], "heads").unwrap();
    assert_eq!(ledger(&g, &[], &steps, Direction::Up), ["n2", "s3"]);
    let steps = down(&g, &["n2", "s3"], "shop@base").unwrap();
    assert_eq!(ledger(&g, &["n2", "s3"], &steps, Direction::Down), ["n1"]);
}

#[test]
fn shapes_and_queries() {
    let g = graph(TWO_BASES);
    assert_eq!(g.heads(), ["n2", "s3"]);
    assert_eq!(g.bases(), ["n1", "s1"]);
    assert_eq!(g.heads_resolving_dependencies(), ["n2", "s3"]);
    let g2 = graph(&["a:", "b:|dep=a"]);
    assert_eq!(g2.heads(), ["a", "b"]);
    assert_eq!(g2.heads_resolving_dependencies(), ["b"]);
    assert_eq!(
        g.branch_members("shop"),
        BTreeSet::from(["s1".into(), "s2".into(), "s3".into()])
    );
    assert_eq!(g.labels_of("s3"), ["shop"]);
    // A label also covers ancestors up to the nearest branch point.
    let g = graph(&["a:", "b:a", "c:b|label=feat", "d:b", "e:c"]);
    assert_eq!(
        g.branch_members("feat"),
        BTreeSet::from(["c".into(), "e".into()])
    );
    let g = graph(&["a:", "b:a", "c:b|label=feat"]);
    assert_eq!(
        g.branch_members("feat"),
        BTreeSet::from(["a".into(), "b".into(), "c".into()])
    );
    let g = graph(DIAMOND);
    assert_eq!(g.branch_points(), [("b", &v(&["c", "d"])[..])]);
    // depends_on may name a label.
    let g = graph(&["a:|label=core", "x:", "y:x|dep=core"]);
    assert_eq!(g.get("y").unwrap().dependencies, ["a"]);
    assert_eq!(up(&g, &[], "y").unwrap(), ["a", "x", "y"]);
    // Ranges for history -r.
    let g = graph(LINEAR);
    let ids = |nodes: Vec<&Node>| nodes.iter().map(|n| n.meta.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(g.history_range(Some("b2:c3"), &[]).unwrap()),
        ["c3", "b2"]
    );
    assert_eq!(
        ids(g.history_range(Some(":b2"), &[]).unwrap()),
        ["b2", "a1"]
    );
    assert_eq!(
        ids(g.history_range(Some("c3:"), &[]).unwrap()),
        ["d4", "c3"]
    );
    assert_eq!(
        ids(g.history_range(Some("current:"), &v(&["c3"])).unwrap()),
        ["d4", "c3"]
    );
    // stamp reduces to heads.
    // Alembic stamps each target on its own line: both rows.
    assert_eq!(
        g.stamp_target(&v(&["b2", "d4"]), &[]).unwrap(),
        ["b2", "d4"]
    );
    assert_eq!(g.stamp_target(&v(&["d4"]), &v(&["b2"])).unwrap(), ["d4"]);
    assert_eq!(
        g.stamp_target(&v(&["base"]), &v(&["d4"])).unwrap(),
        Vec::<String>::new()
    );
    let g = graph(DIAMOND);
    assert_eq!(g.stamp_target(&v(&["c", "d"]), &[]).unwrap(), ["c", "d"]);
}

#[test]
fn errors_name_what_is_wrong() {
    assert_eq!(
        try_graph(&["a:zz"]).unwrap_err(),
        GraphError::MissingDown {
            id: "a".into(),
            missing: "zz".into()
        }
    );
    assert_eq!(
        try_graph(&["a:", "b:a|dep=nope"]).unwrap_err(),
        GraphError::MissingDependency {
            id: "b".into(),
            missing: "nope".into()
        }
    );
    assert_eq!(
        try_graph(&["a:b", "b:a"]).unwrap_err(),
        GraphError::Cycle {
            ids: v(&["a", "b"]),
            dependency: false
        }
    );
    assert_eq!(
        try_graph(&["a:", "b:a", "c:b,e", "d:c", "e:d", "f:e"]).unwrap_err(),
        GraphError::Cycle {
            ids: v(&["c", "d", "e"]),
            dependency: false
        }
    );
    assert_eq!(
        try_graph(&["a:|dep=b", "b:|dep=a"]).unwrap_err(),
        GraphError::Cycle {
            ids: v(&["a", "b"]),
            dependency: true
        }
    );
    assert_eq!(
        try_graph(&["a:a"]).unwrap_err().to_string(),
        "Self-loop is detected in revisions (a): a revision cannot come after itself"
    );
    assert_eq!(
        try_graph(&["a:", "a:"]).unwrap_err(),
        GraphError::DuplicateId { id: "a".into() }
    );
    assert_eq!(
        try_graph(&["a:|label=x", "b:a|label=x"]).unwrap_err(),
        GraphError::DuplicateLabel {
            label: "x".into(),
            first: "a".into(),
            second: "b".into()
        }
    );
    assert_eq!(
        try_graph(&["a:|label=b", "b:a"]).unwrap_err(),
        GraphError::LabelIsId {
            label: "b".into(),
            id: "a".into()
        }
    );

    let g = graph(DIAMOND);
    assert!(matches!(
        up(&g, &[], "ab").unwrap_err(),
        GraphError::Unknown { spec, .. } if spec == "ab"
    ));
    let g2 = graph(&["abc1:", "abc2:abc1"]);
    assert_eq!(
        up(&g2, &[], "abc").unwrap_err(),
        GraphError::Ambiguous {
            spec: "abc".into(),
            candidates: v(&["abc1 (rev abc1)", "abc2 (rev abc2)"])
        }
    );
    let forked = graph(&["a:", "b:a", "c:a"]);
    assert_eq!(
        up(&forked, &[], "head").unwrap_err(),
        GraphError::MultipleHeads {
            what: "head".into(),
            heads: v(&["b", "c"])
        }
    );
    let err = up(&forked, &["a"], "+1").unwrap_err();
    assert!(
        matches!(&err, GraphError::AmbiguousWalk { from, to } if from == "a" && to == &v(&["b", "c"])),
        "{err}"
    );
    // Alembic warns and picks a head; Retort refuses.
    let err = down(&forked, &["b", "c"], "-1").unwrap_err();
    assert!(
        matches!(&err, GraphError::AmbiguousDowngrade { heads, .. } if heads == &v(&["b", "c"])),
        "{err}"
    );
    assert_eq!(
        down(&graph(LINEAR), &["b2"], "d4").unwrap_err(),
        GraphError::NotDowngradeTarget {
            target: "d4".into(),
            current: "b2".into()
        }
    );
    assert_eq!(
        down(&graph(LINEAR), &["b2"], "-3").unwrap_err().to_string(),
        "Relative revision -3 didn't produce 3 migrations: the history (or the database) does \
         not reach that far"
    );
    assert_eq!(
        up(&graph(LINEAR), &["c3"], "+2").unwrap_err(),
        GraphError::Relative {
            relative: "+2".into(),
            steps: 2
        }
    );
    let g = graph(TWO_BASES);
    assert!(matches!(
        up(&g, &[], "nosuch@head").unwrap_err(),
        GraphError::Unknown { spec, .. } if spec == "nosuch"
    ));
    // A partial id needs four characters of the candidate; a shorter id only matches
    // exactly.
    let short = graph(&["abc:", "abcd1:abc"]);
    assert_eq!(up(&short, &[], "abc").unwrap(), ["abc"]);
    assert_eq!(up(&short, &[], "ab").unwrap(), ["abc", "abcd1"]);
    // Going down one step from a merge is ambiguous (Alembic: "Ambiguous walk").
    assert!(matches!(
        down(&graph(DIAMOND), &["m"], "-1").unwrap_err(),
        GraphError::AmbiguousWalk { .. }
    ));
    assert_eq!(
        up(&g, &[], "shop@n2").unwrap_err(),
        GraphError::NotOnBranch {
            id: "n2".into(),
            label: "shop".into()
        }
    );
    assert_eq!(
        up(&g, &[], "+1").unwrap_err().to_string(),
        "Ambiguous walk: from base the history goes on to n1, s1; name a revision or a branch"
    );
    assert_eq!(
        up(&g, &["gone"], "head").unwrap_err(),
        GraphError::UnknownCurrent {
            current: "gone".into()
        }
    );
    assert_eq!(
        graph(LINEAR).history_range(Some("c3:b2"), &[]).unwrap_err(),
        GraphError::BadRange {
            start: "c3".into(),
            end: "b2".into()
        }
    );
}

#[test]
fn many_revisions_resolve_quickly_enough_to_test() {
    // Correctness at size (the timing lives in the benchmark): a 2,000-long chain.
    let ids: Vec<String> = (0..2000).map(|i| format!("r{i:05}")).collect();
    let metas = ids.iter().enumerate().map(|(i, id)| {
        let mut m = Metadata::new(id.clone(), "m");
        if i > 0 {
            m.down = vec![ids[i - 1].clone()];
        }
        m
    });
    let g = Graph::new(metas).unwrap();
    assert_eq!(g.heads(), ["r01999"]);
    let plan = plan_upgrade(&g, &[], &g.upgrade_target("head", &[]).unwrap());
    assert_eq!(plan.len(), 2000);
    assert_eq!(plan[0].revision, "r00000");
    assert_eq!(down(&g, &["r01999"], "-1000").unwrap().len(), 1000);
}

/// Issue 14's differences, one by one; each expectation is what Alembic 1.20.1 did on
/// the same history (the differential tests check the same and more).
#[test]
fn alembic_argument_forms() {
    let g = graph(LINEAR);
    // `upgrade -2` and `downgrade +2` are relative moves Alembic refuses, not ids.
    assert_eq!(
        up(&g, &[], "-2").unwrap_err(),
        GraphError::Relative {
            relative: "-2".into(),
            steps: 2
        }
    );
    assert_eq!(
        down(&g, &["d4"], "+2").unwrap_err(),
        GraphError::Relative {
            relative: "+2".into(),
            steps: 2
        }
    );
    // REV+N in a downgrade counts from REV, not from the database.
    assert_eq!(down(&g, &["d4"], "a1+1").unwrap(), ["d4", "c3"]);
    assert_eq!(up(&g, &[], "heads-1").unwrap(), ["a1", "b2", "c3"]);
    // An upgrade to an applied revision does nothing.
    assert_eq!(up(&g, &["b2"], "a1").unwrap(), Vec::<String>::new());
    let g = graph(TWO_BASES);
    assert_eq!(up(&g, &[], "shop@heads").unwrap(), ["s1", "s2", "s3"]);
    let shown: Vec<&str> = g
        .show_revisions("heads", &[])
        .unwrap()
        .iter()
        .map(|n| n.meta.id.as_str())
        .collect();
    assert_eq!(shown, ["n2", "s3"]);
    // An empty history: nothing to do, nothing to list.
    let empty = graph(&[]);
    assert_eq!(up(&empty, &[], "head").unwrap(), Vec::<String>::new());
    assert!(empty.history_range(None, &[]).unwrap().is_empty());
}

#[test]
fn unknown_names_suggest_the_closest_ids_labels_and_words() {
    let g = graph(&[
        "ae1027a6acf:",
        "1975ea83b712:ae1027a6acf|label=shopping",
        "27c6a30d7c24:1975ea83b712",
    ]);
    // A transposition in a full id, and in a prefix.
    let err = up(&g, &[], "ae1072a6acf").unwrap_err();
    assert!(
        matches!(&err, GraphError::Unknown { suggestions, .. } if suggestions == &v(&["ae1027a6acf"])),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "Can't locate revision identified by 'ae1072a6acf'; did you mean 'ae1027a6acf'?"
    );
    let err = up(&g, &[], "1957").unwrap_err();
    assert!(
        matches!(&err, GraphError::Unknown { suggestions, .. } if suggestions == &v(&["1975ea83b712"])),
        "{err:?}"
    );
    // Spec words and branch labels.
    let err = up(&g, &[], "haed").unwrap_err();
    assert!(
        matches!(&err, GraphError::Unknown { suggestions, .. } if suggestions.first().map(String::as_str) == Some("head")),
        "{err:?}"
    );
    let err = up(&g, &[], "shoping@head").unwrap_err();
    assert!(
        err.to_string().ends_with("did you mean 'shopping'?"),
        "{err}"
    );
    // Nothing close: the hint of where to look instead.
    let err = up(&g, &[], "zzzzzzzz").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Can't locate revision identified by 'zzzzzzzz'; `retort history` lists the revisions"
    );
}
