"""Reports a pytest session to the test executor that started it.

Loaded with ``-p te_reporter`` from a directory of the service's own (never
the tests root). Sends JSON lines over the Unix socket named by
``TEST_EXECUTOR_EVENTS``: what was collected, each test phase with pytest's
own verdict for it, and the session's end with the counts of pytest's
closing line. Narrows the collected tests to the paths and node ids listed
in ``TEST_EXECUTOR_SELECTION``, however many there are (the command line
names only their files). Trims captured output
that was already shown live (``--capture=tee-sys``) from failure reports.
Does nothing at all when the executor's variables are absent.
"""

import json
import os
import re
import socket

import pytest

# The longest failure or skip message sent; the whole text is in the log.
MAX_MESSAGE = 4000
# Captured output longer than this is not repeated under a failure: it was
# already shown as the test ran.
MAX_REPEATED_OUTPUT = 8 * 1024


def _clean(value):
    """Text that encodes as UTF-8 whatever it holds (lone surrogates from
    undecodable file names become U+FFFD)."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class _Channel:
    """The socket to the executor; silent once it is gone."""

    def __init__(self, path):
        self._socket = None
        if not path:
            return
        try:
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.connect(path)
            self._socket = connection
        except OSError:
            self._socket = None

    def send(self, **event):
        if self._socket is None:
            return
        line = json.dumps(_clean(event), ensure_ascii=False) + "\n"
        try:
            self._socket.sendall(line.encode("utf-8"))
        except OSError:
            self.close()

    def close(self):
        if self._socket is not None:
            try:
                self._socket.close()
            except OSError:
                pass
            self._socket = None


def _message(report):
    """The one-line reason of a failure, an error or a skip, as pytest's
    short summary gives it."""
    if hasattr(report, "wasxfail") and report.wasxfail:
        text = str(report.wasxfail)
    elif isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        text = str(report.longrepr[2])
    else:
        crash = getattr(report.longrepr, "reprcrash", None)
        text = crash.message if crash is not None else str(report.longrepr or "")
    text = text.strip()
    return text[:MAX_MESSAGE] if text else None


_ATTACHMENT = re.compile(r"\[\[ATTACHMENT\|([^\]\r\n]+)\]\]")


def _attachments(report):
    """The files a test named with ``[[ATTACHMENT|path]]`` lines in its
    output, as JUnit readers of CI servers take them; paths inside
    ``TEST_ARTIFACTS_DIR`` are made relative to it."""
    text = (report.capstdout or "") + "\n" + (report.capstderr or "")
    if "[[ATTACHMENT|" not in text:
        return []
    root = os.environ.get("TEST_ARTIFACTS_DIR", "")
    found = []
    for raw in _ATTACHMENT.findall(text):
        path = raw.strip()
        if root and os.path.isabs(path):
            relative = os.path.relpath(path, root)
            if relative.startswith(".."):
                continue
            path = relative.replace(os.sep, "/")
        if path and path not in found:
            found.append(path)
    return found


def _selection():
    """What the run names, from the selection file: one test file,
    directory or node id per line."""
    path = os.environ.get("TEST_EXECUTOR_SELECTION")
    if not path:
        return None
    with open(path, encoding="utf-8", errors="surrogateescape") as listed:
        return [line.rstrip("\n") for line in listed if line.strip()]


def _selectors(nodeid):
    """The ids that select an item, as pytest reads a node id on its
    command line: itself, and each class or function that holds it
    (``a.py::K::t[1]`` is selected by ``a.py::K::t`` and ``a.py::K``)."""
    yield nodeid
    bracket = nodeid.find("[")
    head = nodeid if bracket < 0 else nodeid[:bracket]
    if bracket >= 0:
        yield head
    end = head.rfind("::")
    while end > 0 and "::" in head[:end]:
        yield head[:end]
        end = head.rfind("::", 0, end)


class Reporter:
    def __init__(self, config):
        self.config = config
        self.channel = _Channel(os.environ.get("TEST_EXECUTOR_EVENTS"))
        self.selection = _selection()

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        if self.selection is None:
            return
        # Test files and directories named whole, and node ids.
        whole = [s.rstrip("/") for s in self.selection if "::" not in s]
        ids = {s for s in self.selection if "::" in s}
        found = set()
        kept, dropped = [], []
        for item in items:
            file = item.nodeid.split("::", 1)[0]
            in_whole = any(file == w or file.startswith(w + "/") for w in whole)
            match = next((s for s in _selectors(item.nodeid) if s in ids), None)
            if match is not None:
                found.add(match)
            (kept if in_whole or match is not None else dropped).append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept
        for missing in sorted(ids - found):
            self.channel.send(event="not_found", nodeid=missing)

    def pytest_collectreport(self, report):
        if report.failed:
            self.channel.send(
                event="collect_error",
                nodeid=report.nodeid or str(report.fspath),
                message=_message(report) or "collection failed",
            )

    def pytest_collection_finish(self, session):
        self.channel.send(event="collected", count=len(session.items))

    def pytest_runtest_logstart(self, nodeid, location):
        self.channel.send(event="test_start", nodeid=nodeid)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report):
        # pytest's own verdict, as its closing line will count it.
        status = self.config.hook.pytest_report_teststatus(report=report, config=self.config)
        category = status[0] if status else ""
        attachments = _attachments(report)
        if report.failed:
            self._trim_repeated_output(report)
        self.channel.send(
            event="phase",
            nodeid=report.nodeid,
            when=report.when,
            outcome=report.outcome,
            category=category,
            counted=bool(getattr(report, "count_towards_summary", True)),
            subtest=type(report).__name__ == "SubtestReport",
            duration=report.duration,
            message=(
                _message(report)
                if report.outcome != "passed" or hasattr(report, "wasxfail")
                else None
            ),
            attachments=attachments,
        )

    @staticmethod
    def _trim_repeated_output(report):
        trimmed = []
        for title, content in report.sections:
            if title.startswith("Captured std") and len(content) > MAX_REPEATED_OUTPUT:
                content = (
                    content[:MAX_REPEATED_OUTPUT]
                    + "\n... %d more characters, printed above as the test ran ...\n"
                    % (len(content) - MAX_REPEATED_OUTPUT)
                )
            trimmed.append((title, content))
        report.sections[:] = trimmed

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        counts = {}
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            for key, reports in terminal.stats.items():
                shown = [r for r in reports if getattr(r, "count_towards_summary", True)]
                if key and shown:
                    counts[key] = len(shown)
        self.channel.send(event="end", exitstatus=int(exitstatus), counts=counts)

    def pytest_unconfigure(self, config):
        self.channel.close()


def pytest_configure(config):
    # xdist workers' reports reach the controller, which reports them.
    if hasattr(config, "workerinput"):
        return
    config.pluginmanager.register(Reporter(config), "te_reporter_session")
