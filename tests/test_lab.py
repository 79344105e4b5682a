"""Every chapter's "Try it" panel in a real JupyterLab, driven by headless Chromium.

As a student on Binder (or after `make lab`): JupyterLab from this venv opens the
chapter's MyST ``.md`` through jupytext's notebook viewer (``binder/overrides.json``,
which the Makefile copies into the venv), Run All, then every control of the
chapter's free panel is changed: typed + Enter, chosen in a dropdown, stepped with
the arrow keys, and **Run** pressed where the panel trains. After each change the
figure must be present and not blank, table and figure must show the new result,
bad values must give the panel's message and no traceback, and the kernel must be
alive. Response times are recorded in ``_build/lab_responses.json``.

Before the panels, the chapter is read as a student reads it (jupyterlab-myst,
with the book's roles rewritten by dmlbook.labview): no raw directive, role or
glue placeholder in any Markdown cell, every solution folded. The workbook
pages are read the same way, and their reference solutions must be there.

The server runs on 127.0.0.1 with a token, in a temporary settings directory with
autosave off (so the chapters are never written), and every kernel and the server
are stopped by their own ids at the end.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from book_helpers import ROOT, chapter_docs

from dmlbook import explore, glued
from dmlbook.sheet import EXERCISES
from dmlbook.widgets import Choice, Number

from test_browser import CHROMIUM, block_offsite, browser  # noqa: F401 - a fixture

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium: install Debian's package (apt-get install chromium) "
           "to run the JupyterLab test; .ci/run does this")

JUPYTER = str(Path(sys.executable).with_name("jupyter"))
RESULTS = ROOT / "_build" / "lab_responses.json"
# The chapter's panels, in page order (explore.panel(...) cells).
PANELS = {e.chapter_name: list(e.panels) for e in EXERCISES}
RUN_ALL_TIMEOUT_MS = 600_000
CHANGE_TIMEOUT_MS = 60_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


KERNEL_LIST_TRIES = 5


class Lab:
    """A JupyterLab server of this venv; its REST API with the token."""

    def __init__(self, tmp: Path):
        self.port, self.token = _free_port(), secrets.token_hex(16)
        settings = tmp / "settings"
        plugin = settings / "@jupyterlab" / "docmanager-extension"
        plugin.mkdir(parents=True)
        # Never write the chapters back (jupytext would save the open .md).
        (plugin / "plugin.jupyterlab-settings").write_text(json.dumps({"autosave": False}))
        # Every cell rendered (not only those scrolled into view): the test reads them all.
        tracker = settings / "@jupyterlab" / "notebook-extension"
        tracker.mkdir(parents=True)
        (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
        env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings),
               "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
               "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                           os.environ.get("PYTHONPATH")])),
               "TQDM_DISABLE": "1"}
        self.log = open(tmp / "lab.log", "w")
        self.process = subprocess.Popen(
            [JUPYTER, "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={ROOT}",
             # As Binder and `make lab` run it: the book's roles rewritten for jupyterlab-myst.
             f"--config={ROOT / 'binder' / 'jupyter_server_config.json'}",
             "--LabApp.expose_app_in_browser=True", "--ServerApp.open_browser=False",
             # Nothing reaches the internet: no extension manager, no update checks.
             "--LabApp.extension_manager=readonly",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
            + (["--allow-root"] if os.geteuid() == 0 else []),
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(240):
            try:
                self.api("status")
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("JupyterLab exited: " + (tmp / "lab.log").read_text())
                time.sleep(0.5)
        raise RuntimeError("JupyterLab did not start within 120 s")

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def kernels(self) -> dict[str, str]:
        # jupyter_server answers 500 to a listing made while a kernel is still starting
        # (its last_activity not yet set: a TraitError in the server's log, seen once in
        # a fresh-clone run, 2026-12-05). Such a listing is asked again, a few times.
        for attempt in range(KERNEL_LIST_TRIES):
            try:
                return {k["id"]: k["execution_state"] for k in self.api("kernels")}
            except urllib.error.HTTPError as err:
                if err.code != 500 or attempt == KERNEL_LIST_TRIES - 1:
                    raise
                time.sleep(1.0)

    def stop(self, kernel_ids):
        for kernel_id in kernel_ids:
            try:
                self.api(f"kernels/{kernel_id}", method="DELETE")
            except OSError:
                pass  # already gone
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    chapters = {p: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in (ROOT / "chapters").glob("*.md")}
    server = Lab(tmp_path_factory.mktemp("lab"))
    started: set[str] = set()
    server.started = started
    yield server
    server.stop(sorted(started))
    changed = [p.name for p, digest in chapters.items()
               if hashlib.sha256(p.read_bytes()).hexdigest() != digest]
    assert changed == [], f"JupyterLab wrote chapters: {changed}"


@pytest.fixture(scope="module")
def responses():
    record: dict = {}
    yield record
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=1))


# What a student reads in each Markdown cell: the rendered view, not the hidden editor.
MARKDOWN_JS = """() => [...document.querySelectorAll('.jp-Notebook .jp-MarkdownCell')].map(cell => {
  const area = cell.querySelector('.jp-InputArea').cloneNode(true);
  area.querySelectorAll('.jp-Editor, .jp-InputPrompt, .jp-Toolbar, button').forEach(e => e.remove());
  return area.textContent;
})"""
SOLUTIONS_JS = """() => [...document.querySelectorAll('.jp-Notebook .jp-MarkdownCell details')]
  .map(d => ({title: (d.querySelector('summary') || {}).textContent || '', open: d.open,
              body: d.textContent}))
  .filter(d => d.title.trim().startsWith('Solution'))"""
# Book syntax a renderer left as text: a fence, a role, an unevaluated glue.
RAW_MYST = re.compile(r":::|```|\{[a-z]+(?::[a-z]+)?\}`|\{eval\}|glued\(|"
                      + re.escape(glued.NOT_YET[:30]))


def read_as_a_student(page, doc: str, *, wait_ms: int = 0) -> list[dict]:
    """Raw MyST left on the page (none expected) and its solutions; waits up to ``wait_ms``."""
    if wait_ms:
        # A text cell whose numbers a later cell glues says so: run it again, as it asks.
        page.evaluate("""notYet => {
          const panel = window.jupyterapp.shell.currentWidget, nb = panel.content;
          nb.widgets.forEach((cell, i) => {
            if (cell.model.type === 'markdown' && cell.node.textContent.includes(notYet)) {
              nb.activeCellIndex = i;
              window.jupyterapp.commands.execute('notebook:run-cell');
            }
          });
        }""", glued.NOT_YET[:30])
        try:
            page.wait_for_function(f"() => !({MARKDOWN_JS})().some(t => /glued\\(/.test(t))",
                                   timeout=wait_ms, polling=250)
        except Exception:  # noqa: BLE001 - the assertion below names what is left
            pass
    texts = page.evaluate(MARKDOWN_JS)
    assert texts, f"{doc}: no Markdown cell rendered"
    raw = [(i, m.group(0), t[max(0, m.start() - 60):m.end() + 60])
           for i, t in enumerate(texts) for m in [RAW_MYST.search(t)] if m]
    assert raw == [], f"{doc}: raw MyST in JupyterLab (cell, what, where): {raw[:5]}"
    solutions = page.evaluate(SOLUTIONS_JS)
    assert solutions, f"{doc}: no solution found"
    assert not any(s["open"] for s in solutions), f"{doc}: a solution is open before a click"
    return solutions


@pytest.mark.parametrize("doc", [f"workbook/{p.stem}" for p in
                                 sorted((ROOT / "workbook").glob("*.md"))])
def test_workbook_reads_cleanly_in_jupyterlab(lab, browser, doc):
    """A workbook page as a student opens it: MyST rendered, the reference solution folded."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    blocked = block_offsite(page, lab.url)
    try:
        page.goto(f"{lab.url}/lab/tree/{doc}.md?reset&token={lab.token}", wait_until="load")
        page.wait_for_selector(".jp-Notebook .jp-MarkdownCell", timeout=120_000)
        page.wait_for_function("() => document.querySelectorAll("
                               "'.jp-Notebook .jp-MarkdownCell details').length > 0",
                               timeout=60_000)
        solutions = read_as_a_student(page, doc)
        # The reference solution is there, as code, once unfolded.
        assert any("def " in s["body"] or "class " in s["body"] for s in solutions), solutions
        page.screenshot(path=str(ROOT / "_build" / f"lab_{Path(doc).name}.png"))
        assert blocked == [], blocked
    finally:
        lab.started.update(lab.kernels())
        for kernel_id in lab.kernels():
            lab.api(f"kernels/{kernel_id}", method="DELETE")
        page.close()


def _png_pixels(src: str) -> np.ndarray:
    from PIL import Image

    assert src.startswith("data:image/png;base64,"), src[:60]
    data = base64.b64decode(src.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))


# Done when every code cell has an execution count and the kernel is idle, or a cell
# failed (Run All stops there).
NOTEBOOK_STATE = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const m = w.content.model;
  let pending = 0, failed = [];
  for (let i = 0; i < m.cells.length; i++) {
    const c = m.cells.get(i);
    if (c.type !== 'code') continue;
    if (c.executionCount === null) pending++;
    for (let j = 0; j < c.outputs.length; j++)
      if (c.outputs.get(j).type === 'error') failed.push(i);
  }
  const k = w.sessionContext.session.kernel;
  return {pending, failed, idle: k.status === 'idle', path: w.context.path,
          notebook: w.node.classList.contains('jp-NotebookPanel')};
}"""


def _shown(panel) -> dict:
    """The panel's output as the browser shows it: table cells, image, message, status."""
    return panel.evaluate("""p => {
      const out = p.querySelector('.dmlbook-output');
      const img = out.querySelector('img');
      const status = p.querySelectorAll('.widget-html-content');
      return {html: out.innerHTML,
              cells: [...out.querySelectorAll('td')].map(td => td.textContent),
              src: img ? img.src : null,
              loaded: img ? img.complete && img.naturalWidth > 0 : false,
              error: (out.querySelector('.dmlbook-error') || {}).textContent || null,
              text: p.innerText};
    }""")


def _expected_cells(spec, typed) -> list[str]:
    status, shown = spec.evaluate(typed)
    assert status == "ok", shown
    return [html.unescape(re.sub(r"<[^>]+>", "", cell))
            for cell in re.findall(r"<td>(.*?)</td>", shown)]


def _wait_changed(page, panel, before: str, t0: float, spec) -> float:
    page.wait_for_function(
        """([p, before]) => {
          const out = p.querySelector('.dmlbook-output');
          const btn = p.querySelector('button');
          return out.innerHTML !== before && (!btn || !btn.disabled);
        }""", arg=[panel, before], timeout=CHANGE_TIMEOUT_MS, polling=20)
    return time.perf_counter() - t0


def _changed_value(c: Number, spec=None) -> str:
    """A new value within bounds: the default doubled, so that the figure shows it too."""
    value = c.default * 2
    if value == c.default or value > c.high:
        value = c.default + 1 if c.default + 1 <= c.high else (c.low + c.high) / 2
    if not c.integer and c.default == 0:
        value = (c.low + c.high) / 10
    return c.format(int(value) if c.integer else value)


def _bad_values(c: Number) -> list[str]:
    beyond = c.format(c.high * 10 if c.high > 0 else 10)
    return ["0", "-1", "abc", beyond] if c.low > 0 else ["-1", "abc", beyond]


def _check_kernel(lab):
    states = lab.kernels()
    assert states and all(s != "dead" for s in states.values()), states


def _exercise_panel(page, panel, spec, lab, times: list):
    """Change every control of one live panel; check each result."""
    choices = [c for c in spec.controls if isinstance(c, Choice)]
    numbers = [c for c in spec.controls if not isinstance(c, Choice)]
    inputs = {c.name: panel.locator(".widget-dropdown select").nth(i)
              for i, c in enumerate(choices)}
    inputs.update({c.name: panel.locator(".widget-text input").nth(i)
                   for i, c in enumerate(numbers)})
    run = panel.locator("button") if spec.training else None
    handle = panel.element_handle()
    typed = {c.name: (c.default if isinstance(c, Choice) else c.format(c.default))
             for c in spec.controls}
    current = {"src": None}

    def described(name):
        return spec.described({k: typed[k] for k in typed})[name]

    def choose(name, value):
        typed[name] = value
        for dependent, (other, adapt) in spec.depends.items():
            if other == name:
                c = adapt(value)
                typed[dependent] = "" if c is None else c.format(c.default)

    def settle(action):
        before = _shown(panel)["html"]
        t0 = time.perf_counter()
        action()
        if spec.training:
            page.wait_for_function("p => p.innerText.includes('Out of date')", arg=handle,
                                   timeout=CHANGE_TIMEOUT_MS, polling=20)
            assert not run.is_disabled()
            # The result the controls no longer match is dimmed.
            # (after its 0.2 s fade: the opacity is read until it settles, for 2 s at most)
            dim = "p => parseFloat(getComputedStyle(p.querySelector('.dmlbook-output')).opacity)"
            try:
                page.wait_for_function(f"p => ({dim})(p) < 0.6", arg=handle, timeout=2000,
                                       polling=50)
            except Exception:  # noqa: BLE001 - playwright's TimeoutError: the assert says it
                pass
            opacity = float(panel.evaluate(dim))
            assert opacity < 0.6, f"a stale result is not dimmed (opacity {opacity})"
            t0 = time.perf_counter()
            run.click()
        times.append(_wait_changed(page, handle, before, t0, spec))
        _check_kernel(lab)
        return _shown(panel)

    def check(shown):
        """The panel shows what dmlbook computes for the typed values (or its message)."""
        assert "Traceback" not in shown["text"]
        status, message = spec.evaluate(dict(typed)) if not spec.training else (None, None)
        if spec.training:
            status, message = ("ok", None) if shown["error"] is None else (
                "error", shown["error"].removeprefix("Not computed: "))
        if status == "error":
            assert shown["error"] == "Not computed: " + message, shown["error"]
            assert shown["src"] is None
            current["src"] = None  # the next result only has to be there
            return
        assert shown["error"] is None, shown["error"]
        assert shown["src"] and shown["loaded"], "no figure after the change"
        pixels = _png_pixels(shown["src"])
        assert pixels.std() > 10 and (pixels < 160).mean() > 0.002, "the figure is blank"
        assert shown["src"] != current["src"], "the figure did not change"
        if not spec.training:
            assert shown["cells"] == _expected_cells(spec, typed)
        current["src"] = shown["src"]

    if spec.training:
        assert "Press Run" in panel.inner_text()
        before = _shown(panel)["html"]
        t0 = time.perf_counter()
        run.click()
        times.append(_wait_changed(page, handle, before, t0, spec))
    check(_shown(panel))
    for c in spec.controls:
        box = inputs[c.name]
        if isinstance(c, Choice):
            options = [v for _, v in c.options]
            index = options.index(typed[c.name])
            step, key = (1, "ArrowDown") if index + 1 < len(options) else (-1, "ArrowUp")
            box.focus()

            def arrow_keys():
                # JupyterLab takes a plain arrow key on a closed <select> for the notebook's
                # cell cursor; Alt+ArrowDown opens the list, the arrow key moves, Enter picks.
                page.keyboard.press("Alt+ArrowDown")
                page.keyboard.press(key)
                page.keyboard.press("Enter")

            shown = settle(arrow_keys)
            choose(c.name, options[index + step])
            check(shown)
            if spec.training and c.name in {o for o, _ in spec.depends.values()}:
                assert described(next(iter(spec.depends))) is None or \
                    described(next(iter(spec.depends))).text in panel.inner_text()
            label = c.options[index][0]
            shown = settle(lambda: box.select_option(label=label))  # and a choice
            choose(c.name, options[index])
            check(shown)
            continue
        d = described(c.name)
        if d is None:
            assert box.is_disabled()
            continue
        for bad in _bad_values(d):
            shown = settle(lambda: (box.fill(bad), box.press("Enter")))
            assert shown["error"], f"{d.text}: {bad!r} gave no message"
            assert shown["error"].startswith(f"Not computed: {d.text}: “{bad}”"), shown["error"]
            assert shown["src"] is None and "Traceback" not in shown["text"]
        typed[c.name] = _changed_value(d, spec)
        shown = settle(lambda: (box.fill(typed[c.name]), box.press("Enter")))
        check(shown)
        if shown["error"]:  # a rule across controls: back to the default
            typed[c.name] = d.format(d.default)
            shown = settle(lambda: (box.fill(typed[c.name]), box.press("Enter")))
            check(shown)


@pytest.mark.parametrize("doc", [d for d in chapter_docs()])
def test_chapter_panels_in_jupyterlab(lab, browser, responses, doc):
    name = Path(doc).name
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    blocked = block_offsite(page, lab.url)
    try:
        page.goto(f"{lab.url}/lab/tree/{doc}.md?reset&token={lab.token}", wait_until="load")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        # Kernel ready (jupytext's .md carries the kernelspec: no dialog to answer).
        page.wait_for_function("""() => {
            const w = window.jupyterapp.shell.currentWidget;
            const k = w && w.sessionContext && w.sessionContext.session
              && w.sessionContext.session.kernel;
            return k && k.status === 'idle'; }""", timeout=120_000)
        state = page.evaluate(NOTEBOOK_STATE)
        # A MyST .md shown as a notebook: that is jupytext's viewer (binder/overrides.json).
        assert state["notebook"] and state["path"] == f"{doc}.md", state
        lab.started.update(lab.kernels())
        t0 = time.perf_counter()
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_function(f"() => {{ const s = ({NOTEBOOK_STATE})();"
                               " return s.failed.length > 0 || (s.pending === 0 && s.idle); }",
                               timeout=RUN_ALL_TIMEOUT_MS, polling=250)
        run_all_s = time.perf_counter() - t0
        assert page.evaluate(NOTEBOOK_STATE)["failed"] == [], "a cell failed in JupyterLab"
        # What the student reads: every glued number shown, no raw MyST, solutions folded.
        read_as_a_student(page, doc, wait_ms=60_000)
        panels = page.locator(".dmlbook-live-panel")
        panels.first.wait_for(timeout=60_000)
        assert panels.count() == len(PANELS[name])
        record = {"run_all_s": round(run_all_s, 1)}
        for index, key in enumerate(PANELS[name]):
            panel = panels.nth(index)
            panel.scroll_into_view_if_needed()
            # JupyterLab renders a cell's outputs as they scroll into view: wait
            # until the panel shows its title before touching its controls.
            page.wait_for_function("([p, title]) => p.innerText.includes(title)",
                                   arg=[panel.element_handle(), explore.SPECS[key].title],
                                   timeout=CHANGE_TIMEOUT_MS, polling=100)
            times: list[float] = []
            _exercise_panel(page, panel, explore.SPECS[key], lab, times)
            record[key] = {"changes": len(times),
                           "p50_s": round(float(np.percentile(times, 50)), 3),
                           "p95_s": round(float(np.percentile(times, 95)), 3)}
        responses[name] = record
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(responses, indent=1))  # kept if a later chapter fails
        (ROOT / "_build").mkdir(exist_ok=True)
        page.screenshot(path=str(ROOT / "_build" / f"lab_{name}.png"))
        assert errors == [], errors
        assert blocked == [], f"JupyterLab tried to reach the internet: {blocked}"
        _check_kernel(lab)
    finally:
        lab.started.update(lab.kernels())
        for kernel_id in lab.kernels():
            lab.api(f"kernels/{kernel_id}", method="DELETE")
        page.close()


def test_a_kernel_listing_made_while_a_kernel_starts_is_asked_again(monkeypatch):
    lab, answers = Lab.__new__(Lab), []

    def api(path, method="GET"):
        answers.append(path)
        if len(answers) < 3:  # the server's 500 while a kernel starts
            raise urllib.error.HTTPError(path, 500, "Internal Server Error", None, None)
        return [{"id": "k1", "execution_state": "idle"}]

    monkeypatch.setattr(time, "sleep", lambda s: None)
    lab.api = api
    assert lab.kernels() == {"k1": "idle"} and len(answers) == 3
    answers.clear()
    lab.api = lambda path, method="GET": (_ for _ in ()).throw(
        urllib.error.HTTPError(path, 404, "Not Found", None, None))
    with pytest.raises(urllib.error.HTTPError):  # any other error is not retried
        lab.kernels()
