"""Writing datasets: the new-dataset screen (Pilot, real app, real SQLite index and disk store) and
the headless ``atdata-tui write`` command, from every source kind; cancelling leaves nothing."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from textual.css.query import NoMatches
from textual.widgets import Input, Select

from atdata_core.errors import NotFoundError
from atdata_core.importers import import_into, open_source
from atdata_core.index import Index
from atdata_tui.app import AtdataApp
from atdata_tui.cli import main as cli_main
from atdata_tui.jobs import JobState
from atdata_tui.screens.write import NewDatasetScreen, PromptScreen, SchemaTable
from atdata_tui.widgets.jobs import JobsScreen
from atdata_tui.workers.index import IndexOptions

PIL = pytest.importorskip("PIL.Image")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("ATDATA_TUI_HOME", str(home))
    monkeypatch.delenv("ATDATA_TUI_CONFIG", raising=False)
    return home


def open_index(home: Path) -> Index:
    return Index(path=home / "data" / "index.db")


def make_app(home: Path, *, readonly: bool = False) -> AtdataApp:
    return AtdataApp(open_index(home), options=IndexOptions(readonly=readonly))


def store_files(home: Path) -> list[str]:
    root = home / "data" / "shards"
    return sorted(str(Path(d) / f) for d, _s, files in os.walk(root) for f in files)


def holds(predicate) -> bool:
    """``predicate()``, false while the widgets it looks at are not mounted yet."""
    try:
        return bool(predicate())
    except NoMatches:
        return False


async def until(pilot, predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not holds(predicate):
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


# --- sources ---------------------------------------------------------------------------------------


def jsonl_source(tmp: Path, n: int = 25) -> Path:
    path = tmp / "captions.jsonl"
    path.write_text(
        "".join(json.dumps({"text": f"caption {i}", "n": i, "w": i / 2}) + "\n" for i in range(n))
    )
    return path


def csv_source(tmp: Path) -> Path:
    path = tmp / "iris.csv"
    path.write_text(
        "sepal length,species,petal\n5.1,setosa,1.4\n4.9,versicolor,\n6.3,virginica,6\n"
    )
    return path


def image_source(tmp: Path) -> Path:
    from PIL import Image

    root = tmp / "pets"
    for label, color in (("cat", (200, 10, 10)), ("dog", (10, 10, 200))):
        (root / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (5, 4), color).save(root / label / f"{label}{i}.png")
    return root


def tar_source(tmp: Path) -> tuple[str, list[str]]:
    """Shards written by another index (so the copy's keys can be compared)."""
    (tmp / "other").mkdir(exist_ok=True)
    other = Index(path=tmp / "other" / "index.db")
    entry = import_into(other, open_source(jsonl_source(tmp / "other", 12)), name="src", maxcount=5)
    other.close()
    keys = [r.key for r in __import__("atdata_core.dataset").dataset.Dataset(entry.data_urls).raw()]
    brace = entry.data_urls[0].replace("data-000000.tar", "data-{000000..000002}.tar")
    return brace, keys


# --- the screen ------------------------------------------------------------------------------------


async def write_through_screen(
    pilot, app: AtdataApp, path: str, name: str, *, kind: str | None = None
) -> None:
    app.action_new_dataset()
    await pilot.pause(0.1)
    screen = app.screen
    assert isinstance(screen, NewDatasetScreen)
    if kind is not None:
        screen.query_one("#source-kind", Select).value = kind
    path_input = screen.query_one("#source-path", Input)
    path_input.focus()
    path_input.value = path[:-1]
    await pilot.press(path[-1], "enter")  # typed, then submitted
    await until(pilot, lambda: screen.source is not None)
    name_input = screen.query_one("#dataset-name", Input)
    name_input.value = name
    await pilot.pause(0.05)
    await pilot.press("ctrl+s")
    await until(pilot, lambda: isinstance(app.screen, JobsScreen))
    job = app.jobs.jobs[-1]
    await app.jobs.wait(job.id, 60)
    assert job.state is JobState.DONE, job.error
    assert job.result_text == name


async def test_write_each_kind_through_the_screen(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    jsonl_source(tmp_path)
    csv_source(tmp_path)
    image_source(tmp_path)
    tar_url, keys = tar_source(tmp_path)
    app = make_app(home)
    async with app.run_test(size=(120, 36)) as pilot:
        await write_through_screen(pilot, app, "captions.jsonl", "captions")
        await write_through_screen(pilot, app, "iris.csv", "iris")
        await write_through_screen(pilot, app, "pets", "pets", kind="images")
        await write_through_screen(pilot, app, tar_url, "copied", kind="tar")
    index = open_index(home)
    caps = list(index.get_dataset("captions"))
    assert [s.n for s in caps] == list(range(25)) and caps[3].text == "caption 3"
    iris = list(index.get_dataset("iris"))
    assert [(s.sepal_length, s.species, s.petal) for s in iris] == [
        (5.1, "setosa", 1.4),
        (4.9, "versicolor", None),
        (6.3, "virginica", 6.0),
    ]
    pets = list(index.get_dataset("pets"))
    assert sorted(s.label for s in pets) == ["cat"] * 3 + ["dog"] * 3
    assert pets[0].image.shape == (4, 5, 3) and pets[0].image.dtype == np.uint8
    copied = index.resolve_entry("copied")
    from atdata_core.dataset import Dataset

    assert [r.key for r in Dataset(copied.data_urls).raw()] == keys
    index.close()


async def test_schema_edits_in_the_screen(home: Path, tmp_path: Path) -> None:
    path = jsonl_source(tmp_path, 5)
    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        app.push_screen(NewDatasetScreen(str(path)))
        await pilot.pause(0.1)
        screen = app.screen
        await until(pilot, lambda: screen.source is not None)
        table = screen.query_one(SchemaTable)
        table.focus()
        # rename "text" → "caption"
        table.move_cursor(row=0)
        await pilot.press("e")
        assert isinstance(app.screen, PromptScreen)
        prompt_input = app.screen.query_one(Input)
        prompt_input.value = "not valid"
        await pilot.press("enter")
        assert isinstance(app.screen, PromptScreen)  # refused, with the reason shown
        assert "identifier" in str(app.screen.query_one("#prompt-error").render())
        prompt_input.value = "caption"
        await pilot.press("enter")
        await pilot.pause(0.05)
        # n: int → str
        table.move_cursor(row=1)
        await pilot.press("t")
        app.screen.query_one(Input).value = "str"
        await pilot.press("enter")
        await pilot.pause(0.05)
        # w: drop it; then make caption optional
        table.move_cursor(row=2)
        await pilot.press("d")
        table.move_cursor(row=0)
        await pilot.press("o")
        await pilot.pause(0.05)
        fields = [(f.name, f.describe()) for f in screen.source.schema.fields]
        assert fields == [("caption", "str | None"), ("n", "str")]
        screen.query_one("#dataset-name", Input).value = "edited"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        await app.jobs.wait(app.jobs.jobs[-1].id)
    index = open_index(home)
    samples = list(index.get_dataset("edited"))
    assert [(s.caption, s.n) for s in samples][:2] == [("caption 0", "0"), ("caption 1", "1")]
    index.close()


async def test_screen_refuses_bad_names_and_taken_names(home: Path, tmp_path: Path) -> None:
    path = jsonl_source(tmp_path, 3)
    index = open_index(home)
    import_into(index, open_source(path), name="taken")
    app = AtdataApp(index, options=IndexOptions())
    async with app.run_test(size=(100, 30)) as pilot:
        app.push_screen(NewDatasetScreen(str(path)))
        await pilot.pause(0.1)
        screen = app.screen
        await until(pilot, lambda: screen.source is not None)
        screen.query_one("#dataset-name", Input).value = "bad name!"
        await pilot.pause(0.05)
        assert "invalid dataset name" in str(screen.query_one("#name-status").render())
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert app.screen is screen and not app.jobs.jobs
        screen.query_one("#dataset-name", Input).value = "taken"
        await pilot.press("ctrl+s")
        await until(
            pilot, lambda: "already exists" in str(screen.query_one("#name-status").render())
        )
        assert app.screen is screen and not app.jobs.jobs


async def test_source_errors_show_in_the_screen(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n{"a": \n')
    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        app.push_screen(NewDatasetScreen(str(bad)))
        await pilot.pause(0.1)
        status = app.screen.query_one("#source-status")
        await until(pilot, lambda: "line 2" in str(status.render()))
        assert "malformed JSON" in str(status.render())
        app.screen.query_one("#skip-bad").value = True
        await until(pilot, lambda: app.screen.source is not None)


async def test_cancel_mid_write_leaves_nothing(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    with path.open("w") as f:
        for i in range(300_000):
            f.write(f'{{"i": {i}, "t": "row {i}"}}\n')
    app = make_app(home)
    async with app.run_test(size=(120, 36)) as pilot:
        app.push_screen(NewDatasetScreen(str(path)))
        await pilot.pause(0.1)
        screen = app.screen
        await until(pilot, lambda: screen.source is not None)
        screen.query_one("#dataset-name", Input).value = "big"
        screen.query_one("#maxcount", Input).value = "20000"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        job = app.jobs.jobs[-1]
        await until(pilot, lambda: job.progress.samples > 40_000)  # a few shards are written
        assert job.state is JobState.RUNNING
        assert job.progress.total == 300_000 and job.progress.eta is not None
        await pilot.press("c")
        await app.jobs.wait(job.id, 30)
        assert job.state is JobState.CANCELLED
    index = open_index(home)
    with pytest.raises(NotFoundError):
        index.resolve_entry("big")
    assert index.count_entries() == 0
    leftovers = store_files(home)
    assert not [f for f in leftovers if f.endswith(".tar") or ".partial" in f], leftovers
    index.close()


async def test_readonly_disables_writing(home: Path, tmp_path: Path) -> None:
    app = make_app(home, readonly=True)
    async with app.run_test() as pilot:
        app.action_new_dataset()
        await pilot.pause(0.1)
        assert not isinstance(app.screen, NewDatasetScreen)
        app.push_screen(NewDatasetScreen(str(jsonl_source(tmp_path, 2))))
        await pilot.pause(0.1)
        await until(pilot, lambda: app.screen.source is not None)
        app.screen.query_one("#dataset-name", Input).value = "nope"
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert not app.jobs.jobs


# --- the CLI ---------------------------------------------------------------------------------------


def test_cli_write_each_kind(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tar_url, keys = tar_source(tmp_path)
    cases = [
        (str(jsonl_source(tmp_path)), "cli-jsonl", [], 25),
        (str(csv_source(tmp_path)), "cli-csv", ["--kind", "csv"], 3),
        (str(image_source(tmp_path)), "cli-images", ["--image-mode", "encoded"], 6),
        (tar_url, "cli-tar", ["--maxcount", "4"], 12),
    ]
    for source, name, extra, count in cases:
        rc = cli_main(["write", source, "--name", name, *extra])
        out, err = capsys.readouterr()
        assert rc == 0, err
        assert out.startswith(f"{name}\t") and f"{count} samples" in out
        assert "samples" in err  # progress on stderr
    index = open_index(home)
    assert index.resolve_entry("cli-tar").shards == 3
    from atdata_core.dataset import Dataset

    assert [r.key for r in Dataset(index.resolve_entry("cli-tar").data_urls).raw()] == keys
    pets = list(index.get_dataset("cli-images"))
    assert pets[0].image.startswith(b"\x89PNG")
    index.close()


def test_cli_write_errors(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3\n")
    assert cli_main(["write", str(ragged), "--name", "r"]) == 1
    err = capsys.readouterr().err
    assert "ragged.csv, line 3" in err and "Traceback" not in err
    assert cli_main(["write", str(tmp_path / "missing.jsonl"), "--name", "m"]) == 1
    assert "does not exist" in capsys.readouterr().err
    src = jsonl_source(tmp_path, 2)
    assert cli_main(["write", str(src), "--name", "dup"]) == 0
    assert cli_main(["write", str(src), "--name", "dup"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert cli_main(["write", str(src), "--name", "bad name"]) == 1
    assert "invalid dataset name" in capsys.readouterr().err
    assert cli_main(["write", str(src), "--name", "x", "--readonly"]) == 2
    assert cli_main(["write", str(ragged), "--name", "r2", "--skip-bad", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["samples"] == 1 and out["skipped"] == 1
