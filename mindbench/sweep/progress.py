"""What a sweep shows while it runs: a live display on a terminal, plain lines elsewhere.

The worker (mindbench/sweep/worker.py) reports structured events on its stdout, one JSON object a
line; the harness hands each to `Progress.event`. Events:

    {"event": "phase", "phase": "load"|"speed"|"fidelity"|"suite code"|..., "eta_s": 12.0}
    {"event": "plan", "eta_s": {"speed": 30.0, "fidelity": 8.0, "suite code": 60.0}}
    {"event": "progress", "stage": "speed", "done": 2, "total": 4, "tok_s": 14.9}
    {"event": "progress", "suite": "code", "stage": "generate", "done": 8, "total": 40,
     "tokens": 640, "seconds": 32.0}

`eta_s` are the worker's estimates of a stage's seconds (from the roofline before anything is
measured, then from the measured speed); within a stage, once items are done, the stage's own
rate replaces them. On a terminal the display is redrawn by a timer at least once a second, so the
elapsed time and the ETAs move even while a stage reports nothing (a slow fidelity pass on a busy
machine). Off a terminal each event is one plain line with the same fields. A finished cell leaves
one summary line with its stage breakdown (the record's `timings_s`).

The clock is injectable, so tests drive the display with fake time and fake events.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from mindbench.store.record import Record

# The record's stage breakdown, in the order a cell runs them (worker.STAGE_KEYS writes them).
TIMING_ORDER = ("bandwidth", "fidelity_reference", "load", "speed", "fidelity", "generation", "execution")


def clock_text(seconds: float | None) -> str:
    """0:07, 3:25, 1:02:03; '?' when unknown."""
    if seconds is None:
        return "?"
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def timings_text(timings: dict | None) -> str:
    """'load 3.1 s, speed 20.0 s, ...' from a record's timings_s (empty for older records)."""
    if not timings:
        return ""
    keys = [k for k in TIMING_ORDER if timings.get(k)] + [
        k for k in timings if k not in TIMING_ORDER and k != "total" and timings.get(k)
    ]
    return ", ".join(f"{k.replace('_', ' ')} {timings[k]:.1f} s" for k in keys if isinstance(timings[k], (int, float)))


class _Cell:
    """What the display knows about one running cell."""

    def __init__(self, cell: dict, index: int, now: float):
        self.cell, self.index, self.started = cell, index, now
        self.phase, self.phase_started, self.phase_eta = "starting", now, None
        self.sub = None  # a suite's stage: generate / execute
        self.done = self.total = None
        self.tok_s = None
        self.plan: dict[str, float] = {}  # phase -> estimated seconds (worker's)
        self.seen: list[str] = []

    def label(self) -> str:
        c = self.cell
        return " ".join(str(x) for x in (c.get("model"), c.get("runtime"), c.get("precision")) if x)

    def stage(self) -> str:
        return f"{self.phase} {self.sub}" if self.sub else self.phase

    def stage_eta(self, now: float) -> float | None:
        """Seconds left in the current stage: from the items' measured rate once any are done,
        else the worker's estimate less the time already spent."""
        spent = now - self.phase_started
        if self.done and self.total and spent > 0:
            return spent * (self.total - self.done) / self.done
        est = self.plan.get(self.phase, self.phase_eta)
        if est is None:
            return None
        return max(0.0, est - spent)

    def remaining(self, now: float) -> float | None:
        """Seconds left in this cell: this stage plus the estimates of stages not started."""
        eta = self.stage_eta(now)
        if eta is None:
            return None
        return eta + sum(s for p, s in self.plan.items() if p not in self.seen and p != self.phase)


class Progress:
    """The sweep's progress: tqdm bars on a terminal (redrawn by a timer), plain lines off one.

    enabled: None = bars on a terminal, lines elsewhere; True = bars; False = nothing."""

    def __init__(
        self,
        total: int,
        done: int = 0,
        *,
        enabled: bool | None = None,
        stream=None,
        clock: Callable[[], float] = time.monotonic,
        interval_s: float = 0.5,
        timer: bool = True,
    ):
        self.total, self.done = total, done
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.started = clock()
        self.cells: dict[str, _Cell] = {}
        self.durations: list[float] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._timer = None
        self._last_line: dict[str, str] = {}
        self.redraws = 0
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.mode = "off" if enabled is False else "bars" if (enabled or (enabled is None and tty)) else "lines"
        self.bars: dict[str, object] = {}
        self.outer = None
        if self.mode == "bars":
            try:
                from tqdm import tqdm
            except ImportError:  # a dependency, but the sweep must not fail over a display
                self.mode = "lines"
            else:
                self._tqdm = tqdm
                # our own fields (elapsed and ETAs from our clock and the worker's estimates),
                # tqdm only draws the bar and keeps the lines in place
                self.outer = tqdm(
                    total=total,
                    initial=done,
                    file=self.stream,
                    position=0,
                    dynamic_ncols=True,
                    bar_format="{desc} |{bar:12}| {n_fmt}/{total_fmt} cells, {unit}",
                    desc="sweep",
                )
                if timer:
                    self._timer = threading.Thread(
                        target=self._tick_loop, args=(interval_s,), name="mindbench-progress", daemon=True
                    )
                    self._timer.start()

    # --- what the display shows ------------------------------------------------------------
    def sweep_eta(self, now: float) -> float | None:
        """Seconds left in the whole sweep: the running cells' remaining time, plus the cells not
        started at the mean of finished cells (or, before any finished, the running one's
        projected total)."""
        running = list(self.cells.values())
        left = [c.remaining(now) for c in running]
        if any(x is None for x in left):
            return None
        waiting = self.total - self.done - len(running)
        if waiting <= 0:
            return max(left, default=0.0)
        if self.durations:
            per = sum(self.durations) / len(self.durations)
        elif running:
            per = max((now - c.started) + r for c, r in zip(running, left))
        else:
            return None
        return max(left, default=0.0) + waiting * per / max(1, len(running))

    def fields(self, c: _Cell, now: float) -> dict:
        """The figures one cell's line shows (tests read these)."""
        return {
            "index": c.index,
            "total": self.total,
            "label": c.label(),
            "stage": c.stage(),
            "done": c.done,
            "items": c.total,
            "tok_s": c.tok_s,
            "elapsed_s": now - c.started,
            "stage_eta_s": c.stage_eta(now),
            "sweep_eta_s": self.sweep_eta(now),
        }

    @staticmethod
    def _figures(f: dict) -> list[str]:
        """items, tok/s, elapsed, stage ETA, sweep ETA: the same fields for bars and lines."""
        parts = [f"{f['done'] or 0}/{f['items']}"] if f["items"] else []
        if f["tok_s"]:
            parts.append(f"{f['tok_s']:.1f} tok/s")
        return parts + [
            f"elapsed {clock_text(f['elapsed_s'])}",
            f"stage ETA {clock_text(f['stage_eta_s'])}",
            f"sweep ETA {clock_text(f['sweep_eta_s'])}",
        ]

    def line(self, c: _Cell, now: float) -> str:
        f = self.fields(c, now)
        figs = self._figures(f)
        head = f"{f['stage']} {figs.pop(0)}" if f["items"] else f["stage"]
        return f"[{f['index']}/{f['total']}] {f['label']}: " + ", ".join([head] + figs)

    def render(self) -> list[str]:
        """The display's text now: one line per running cell (what the bars show)."""
        with self._lock:
            now = self.clock()
            return [self.line(c, now) for c in self.cells.values()]

    # --- events ------------------------------------------------------------------------------
    def _cell(self, cell: dict) -> _Cell:
        key = cell.get("cell") or f"{cell.get('model')}|{cell.get('runtime')}|{cell.get('precision')}"
        c = self.cells.get(key)
        if c is None:
            c = self.cells[key] = _Cell(cell, self.done + len(self.cells) + 1, self.clock())
        return c

    def event(self, cell: dict, ev: dict) -> None:
        if self.mode == "off":
            return
        with self._lock:
            c = self._cell(cell)
            now = self.clock()
            kind = ev.get("event")
            if kind == "phase":
                c.phase, c.phase_started, c.phase_eta = str(ev.get("phase")), now, ev.get("eta_s")
                c.sub = c.done = c.total = c.tok_s = None
                c.seen.append(c.phase)
            elif kind == "plan":
                c.plan.update({k: v for k, v in (ev.get("eta_s") or {}).items() if isinstance(v, (int, float))})
            elif kind == "progress":
                if ev.get("suite"):
                    phase = f"suite {ev['suite']}"
                    if c.phase != phase:  # a suite's progress before its phase event
                        c.phase, c.phase_started, c.phase_eta = phase, now, None
                        c.seen.append(phase)
                    c.sub = ev.get("stage")
                c.done, c.total = ev.get("done"), ev.get("total")
                if ev.get("tok_s"):
                    c.tok_s = float(ev["tok_s"])
                elif ev.get("tokens") and ev.get("seconds"):
                    c.tok_s = ev["tokens"] / ev["seconds"]
            else:
                return
            if self.mode == "lines":
                text = self.line(c, now)
                key = text.split(", elapsed")[0]  # the same stage and count again: not a new line
                if self._last_line.get(id(c)) != key:
                    self._last_line[id(c)] = key
                    print(text, file=self.stream, flush=True)
            else:
                self._draw(now)

    def finished(self, rec: Record) -> None:
        if self.mode == "off":
            return
        with self._lock:
            cfg = rec.config
            key = rec.cell
            c = self.cells.pop(key, None)
            if c is None:  # matched by label (a record from another node has another fingerprint)
                label = (cfg.model, cfg.runtime, cfg.precision)
                key = next(
                    (
                        k
                        for k, v in self.cells.items()
                        if (v.cell.get("model"), v.cell.get("runtime"), v.cell.get("precision")) == label
                    ),
                    None,
                )
                c = self.cells.pop(key, None) if key else None
            self.done += 1
            took = rec.duration_s
            if took is None and c is not None:
                took = self.clock() - c.started
            if took is not None:
                self.durations.append(float(took))
            index = c.index if c else self.done
            label = " ".join(str(x) for x in (cfg.model, cfg.runtime, cfg.precision) if x)
            text = f"[{index}/{self.total}] {label}: {rec.status}"
            if took is not None:
                text += f" in {clock_text(took)}"
            stages = timings_text(rec.timings_s)
            if stages:
                text += f" ({stages})"
            if rec.error:
                text += f" - {rec.error}"
            if self.mode == "lines":
                print(text, file=self.stream, flush=True)
                return
            bar = self.bars.pop(key, None) if key else None
            if bar is not None:
                bar.close()
            self.outer.write(text, file=self.stream)
            self.outer.n = self.done
            self._draw(self.clock())

    # --- drawing -----------------------------------------------------------------------------
    def _draw(self, now: float) -> None:
        eta = self.sweep_eta(now)
        # our figures travel in tqdm's `unit` field: its postfix would add a comma of its own
        self.outer.unit = f"elapsed {clock_text(now - self.started)}, ETA {clock_text(eta)}"
        for i, (key, c) in enumerate(self.cells.items()):
            bar = self.bars.get(key)
            if bar is None:
                bar = self.bars[key] = self._tqdm(
                    total=1,
                    file=self.stream,
                    position=1 + i,
                    leave=False,
                    dynamic_ncols=True,
                    bar_format="{desc} |{bar:12}| {unit}",
                )
            f = self.fields(c, now)
            bar.total, bar.n = (f["items"] or 1), (f["done"] or 0)
            bar.set_description_str(f"[{f['index']}/{f['total']}] {f['label']} | {f['stage']}", refresh=False)
            bar.unit = ", ".join(self._figures(f))
            bar.refresh()
        self.outer.refresh()
        self.redraws += 1

    def tick(self) -> None:
        """Redraw now (the timer calls this; tests call it with a fake clock)."""
        if self.mode != "bars":
            return
        with self._lock:
            self._draw(self.clock())

    def _tick_loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.tick()
            except Exception:
                pass  # a display hiccup must not stop the sweep

    def close(self) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join(timeout=2)
        with self._lock:
            for bar in self.bars.values():
                bar.close()
            self.bars.clear()
            if self.outer is not None:
                self.outer.close()
