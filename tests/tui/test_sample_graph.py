"""The sample graph: drawn for a domain (n/p/c), and traced through a tiny trained
checkpoint (pooling levels keep subsets of the level below; a prediction with its probability)."""

from __future__ import annotations

from pathlib import Path

import pytest
from analysis_fixtures import copy_trained_run, screen_text, settle, trained_template
from dashboard_fixtures import make_app
from snapshot_loader import snapshot_app
from textual.widgets import DataTable

from nsm.runs import RunStore
from nsm.training.sample_trace import trace_sample
from tui.screens.runs import RunsScreen
from tui.screens.sample_graph import SampleGraphScreen


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_template(tmp_path_factory.mktemp("trained"))


def test_a_trained_checkpoint_keeps_nested_node_sets_and_predicts(template: Path) -> None:
    view = trace_sample(template / "best_model.pt", index=3)
    trace = view.trace
    assert trace is not None and trace.checkpoint == "best_model.pt"
    assert len(trace.levels) == 3
    assert trace.levels[0] == tuple(range(len(view.nodes)))
    for lower, upper in zip(trace.levels, trace.levels[1:]):
        assert set(upper) < set(lower) and len(upper) == -(-len(lower) // 2)  # ceil(ratio 0.5 * n)
    assert sum(trace.probabilities) == pytest.approx(1.0, abs=1e-5)
    assert trace.predicted in (0, 1)
    from nsm.data.sample_view import render_sample

    text = "\n".join(render_sample(view, 78))
    p = trace.probabilities[trace.predicted]
    assert f"p={p:.3f}" in text and "level 2:" in text and "level 3:" in text


def test_a_checkpoint_of_another_domain_is_refused(template: Path) -> None:
    with pytest.raises(ValueError, match="is a planning model"):
        trace_sample(template / "best_model.pt", index=0, domain="kg")


async def test_g_on_the_runs_screen_traces_the_runs_best_checkpoint(template: Path, tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    copy_trained_run(template, store, "tiny")
    app = make_app(store.root)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f2")
        await settle(app, pilot)
        assert isinstance(app.screen, RunsScreen) and app.screen.query_one("#runs-table", DataTable).row_count == 1
        await pilot.press("g")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, SampleGraphScreen) and screen.checkpoint is not None
        assert screen.checkpoint.name == "best_model.pt"
        body = "\n".join(screen.lines)
        assert "prediction: class" in body and "Pooling" in body
        await pilot.press("c")  # a checkpoint reads its own domain only
        assert screen.domain == "planning"
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_next_previous_and_domain_keys_redraw(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(SampleGraphScreen("planning"))
        await settle(app, pilot)
        screen = app.screen
        assert screen.lines[0].startswith("planning sample 0 (seed 42): label 0")
        await pilot.press("n")
        await settle(app, pilot)
        assert screen.lines[0].startswith("planning sample 1 (seed 42): label 1")
        await pilot.press("c")
        await settle(app, pilot)
        from nsm.config import DOMAINS

        assert screen.lines[0].startswith(f"{DOMAINS[(DOMAINS.index('planning') + 1) % len(DOMAINS)]} sample 1")
        await pilot.press("p", "p")
        await settle(app, pilot)
        assert screen.index == 0 and any("first one" in n.message for n in app._notifications)
        assert "Edges by relation" in screen_text(app)


def test_sample_graph_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def shown(pilot) -> None:  # type: ignore[no-untyped-def]
        pilot.app.push_screen(SampleGraphScreen("causal", index=2))
        await settle(pilot.app, pilot)

    assert snap_compare(snapshot_app("sample_graph_app").build_sample_graph_app(), terminal_size=(80, 24), run_before=shown)
