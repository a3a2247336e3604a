"""Which stages the workers run, and in what order: read from the graph DVC resolves."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from aebench.config import load_params
from aebench.hardware import hardware_class


class DispatchError(Exception):
    """A problem the user can fix (a dirty workspace, a bad argument): one message, no traceback."""


@dataclass
class Plan:
    """Stages to dispatch in an order where every stage follows its dependencies."""

    order: list[str]
    upstream: dict[str, list[str]]  # stage -> the dispatched stages it waits for
    # stage -> the lock entries its worker keeps: upstream stages that are not dispatched
    lock_entries: dict[str, list[str]] = field(default_factory=dict)
    final: list[str] = field(default_factory=list)  # run by the closing `dvc repro`
    local_first: list[str] = field(default_factory=list)  # committed outputs: run in place first
    up_to_date: int = 0
    # where some stage groups are read as they are: every stage of the pipeline's graph bar
    # those (up to date or not), dependencies first, as whole groups where it can, for a closing
    # `dvc repro --single-item` that never reaches past them
    closing: list[str] = field(default_factory=list)


def _uses_run_cache(stage) -> bool:
    """Whether DVC saves the stage to its run-cache: not if it always runs or persists an
    output, nor if a regular output is uncached (metrics and plots may be: DVC copies them into
    the cache for the run-cache; see ``Stage.run`` and ``StageCache.save``)."""
    if stage.always_changed or any(out.persist for out in stage.outs):
        return False
    return all(out.use_cache or out.is_metric or out.is_plot for out in stage.outs)


def _address(stage, root: Path) -> str:
    """How `dvc repro` run in ``root`` names the stage (DVC's own addressing is relative to the
    current directory)."""
    dvcfile = Path(stage.dvcfile.path).resolve()
    if dvcfile == (root / "dvc.yaml").resolve():
        return stage.name
    return f"{dvcfile.relative_to(root.resolve())}:{stage.name}"


def _group(stage, root: Path) -> str:
    """A stage's address without a foreach/matrix item: how a whole stage group is named."""
    return _address(stage, root).split("@")[0]


def _as_groups(graph, in_order: list, all_stages: list, root: Path) -> list[str]:
    """``in_order`` (dependencies first) named by whole stage groups where every item of a
    group is there and the groups keep that order: `dvc repro --single-item` loads its pipeline
    file once per target, and ~350 item targets would each re-read a lock file. Otherwise the
    items themselves."""
    import networkx as nx

    items = [_address(stage, root) for stage in in_order]
    members: dict[str, list[str]] = {}  # group -> its items' addresses, in file order
    for stage in all_stages:
        members.setdefault(_group(stage, root), []).append(_address(stage, root))
    groups = list(dict.fromkeys(_group(stage, root) for stage in in_order))
    if any(not set(items).issuperset(members[group]) for group in groups):
        return items
    position = {group: i for i, group in enumerate(groups)}
    rank = {item: i for group in members.values() for i, item in enumerate(group)}

    def place(stage) -> tuple[int, int]:  # where the groups' expansion runs the stage
        return position[_group(stage, root)], rank[_address(stage, root)]

    for stage in in_order:
        for dependency in nx.descendants(graph, stage):  # descendants: its dependencies
            if place(dependency) > place(stage):
                return items  # a group's expansion would run a stage before its dependency
    return groups


def _hardware_changed(root: Path, params_file: str) -> bool:
    """The hardware stage always runs; it matters only when its record would change."""
    params = load_params(root / params_file)
    current = hardware_class(params.train.device, params.train.threads)
    recorded = root / "hardware.json"
    return not recorded.is_file() or json.loads(recorded.read_text()) != current


def _pipeline_graph(
    graph, root: Path, pipeline: str, single_file: bool = False, read_as_is: frozenset = frozenset()
):
    """The stages of one pipeline file and every stage they depend on (of any file): the
    studies pipeline is not part of the default one, but the default's stages feed it. With
    ``single_file`` only the always-run stages (settings, hardware) join the file's own: the
    others' outputs are read as the workspace holds them (`dvc repro --single-item`). The stage
    groups named in ``read_as_is`` are neither run nor followed to what they depend on: their
    outputs too are read as they are (the tuning grid's committed validation scores, whose
    models a fresh clone lacks)."""
    import networkx as nx

    if read_as_is:
        graph = graph.subgraph(s for s in graph if _group(s, root) not in read_as_is)
    target = (root / pipeline).resolve()
    chosen = {stage for stage in graph if Path(stage.dvcfile.path).resolve() == target}
    if not chosen and not target.is_file():
        raise DispatchError(f"{pipeline}: no such pipeline file in {root}")
    keep = set(chosen)
    for stage in chosen:
        dependencies = nx.descendants(graph, stage)  # descendants: its dependencies
        keep |= {s for s in dependencies if s.always_changed} if single_file else dependencies
    return graph.subgraph(keep)


def _in_file_order(graph, listed: list) -> list:
    """Every stage after the stages it depends on, and otherwise run by run in the order the
    pipeline file lists them: a matrix's first row's train and evaluate stages come before the
    second row's, so the first-listed runs are finished (trained and evaluated) first."""
    import networkx as nx

    group_position: dict[str, int] = {}
    rows_seen: dict[str, int] = {}
    key = {}
    for stage in listed:
        group = stage.addressing.split("@")[0]  # a foreach/matrix stage's name before its item
        group_position.setdefault(group, len(group_position))
        row = rows_seen.get(group, 0)
        rows_seen[group] = row + 1
        key[stage.addressing] = (row, group_position[group])
    return list(
        nx.lexicographical_topological_sort(
            graph.reverse(copy=False), key=lambda stage: key.get(stage.addressing, (-1, -1))
        )
    )


def plan_stages(
    root: Path,
    params_file: str = "params.yaml",
    pipeline: str = "dvc.yaml",
    single_file: bool = False,
    read_as_is: frozenset[str] = frozenset(),
) -> Plan:
    """Stages out of date in ``root``'s workspace, plus everything downstream of them (whether a
    dependant must re-run is known only once its inputs exist; its worker then restores or
    skips it). Stages that always run are left to each worker's own `dvc repro`; stages with
    uncached outputs and no dependants (the report) run in the closing step. ``read_as_is``:
    stage groups (``tuning/dvc.yaml:train_tuning``) whose outputs are taken as they are."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        # edges point from a stage to the stages it depends on
        graph = _pipeline_graph(repo.index.graph, root, pipeline, single_file, read_as_is)
        with repo.lock:
            stale = {stage for stage in graph if not stage.always_changed and stage.changed()}
        hardware_stale = _hardware_changed(root, params_file)
        for stage in graph:
            # the settings stage ran just before the plan (aebench run does it first): its
            # files are current, and their dependants are stale only if their bytes changed
            current = stage.name == "settings" or (stage.name == "hardware" and not hardware_stale)
            if stage.always_changed and not current:
                stale |= set(nx.ancestors(graph, stage))  # ancestors: its dependants
        affected = set(stale)
        for stage in stale:
            affected |= set(nx.ancestors(graph, stage))
        order, final, local_first = [], [], []
        in_order = _in_file_order(graph, repo.index.stages)  # dependencies first
        for stage in in_order:
            if stage not in affected or stage.always_changed:
                continue
            if _uses_run_cache(stage):
                order.append(stage)
            elif nx.ancestors(graph, stage):
                local_first.append(_address(stage, root))
            else:
                final.append(_address(stage, root))
        dispatched = set(order)
        upstream, lock_entries = {}, {}
        for stage in order:  # its dependencies: dispatched ones to wait for, the rest to keep
            deps = nx.descendants(graph, stage)
            name = _address(stage, root)
            upstream[name] = sorted(_address(dep, root) for dep in deps if dep in dispatched)
            lock_entries[name] = sorted(_address(dep, root) for dep in deps - dispatched)
        return Plan(
            order=[_address(stage, root) for stage in order],
            upstream=upstream,
            lock_entries=lock_entries,
            final=final,
            local_first=local_first,
            up_to_date=len(graph) - len(affected),
            closing=_as_groups(graph, in_order, repo.index.stages, root) if read_as_is else [],
        )
