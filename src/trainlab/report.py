"""report.md and report.html from a run folder's results.json.

The HTML page is self-contained: styles inline and figures embedded as data URIs, so it
opens offline and survives being mailed around. Rendering reads only results.json and
the figure files, so ``trainlab report RUN_DIR`` redraws a report without re-running.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from trainlab.errors import ArgumentError
from trainlab.results import STATUSES, Results, schema_problems
from trainlab.runs import atomic_write_text, describe_os_error, read_json

__all__ = ["format_value", "load_results", "render_html", "render_markdown", "write_report"]

_COLOURS = {"passed": "#1a7f37", "failed": "#cf222e", "error": "#9a6700", "skipped": "#6e7781"}


def load_results(run_dir: str | Path, argument: str = "RUN_DIR") -> Results:
    """results.json of ``run_dir``, checked against the schema (:mod:`trainlab.results`); errors name
    ``argument`` (the option the user gave the folder with)."""
    run_dir = Path(run_dir)
    path = run_dir / "results.json"
    if not run_dir.is_dir():
        raise ArgumentError(argument, str(run_dir), "a run folder written by `trainlab verify`")
    if not path.is_file():
        raise ArgumentError(argument, str(run_dir), "a folder containing results.json")
    try:
        results = read_json(path)
    except ValueError as e:  # not JSON, not UTF-8, nested too deeply
        raise ArgumentError(argument, str(run_dir), f"a readable results.json ({e})") from None
    except OSError as e:  # (inside the caller's output_errors, it would read as a failed write)
        why = describe_os_error(e)
        raise ArgumentError(argument, str(run_dir), f"a readable results.json ({why})") from None
    problems = schema_problems(results)
    if problems:
        raise ArgumentError(argument, str(run_dir), f"a results.json in trainlab's schema ({problems[0]}"
                            + (f", and {len(problems) - 1} more problems)" if len(problems) > 1 else ")"))
    return results


def format_value(v: Any, *, max_items: int = 8) -> str:
    """Compact text for a measured/expected value: 6 significant digits, long lists cut."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        items = [format_value(x, max_items=max_items) for x in v[:max_items]]
        more = f", … ({len(v)} items)" if len(v) > max_items else ""
        return "[" + ", ".join(items) + more + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {format_value(x, max_items=max_items)}"
                               for k, x in list(v.items())[:max_items]) + "}"
    return str(v)


def _rows(claim: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    keys = list(dict.fromkeys([*claim.get("measured", {}), *claim.get("expected", {})]))
    m, e, t = claim.get("measured", {}), claim.get("expected", {}), claim.get("tolerance", {})
    return [(k, format_value(m[k]) if k in m else "", format_value(e[k]) if k in e else "",
             format_value(t[k]) if k in t else "") for k in keys]


def _interrupted(results: Results) -> str:
    """' (interrupted; not run: a, b)' for a run with claims it was asked for and never finished."""
    if not results.get("interrupted"):
        return ""
    pending = results.get("pending", [])
    return f" (interrupted; not run: {', '.join(pending)})" if pending else " (interrupted)"


def _counts(results: dict[str, Any]) -> str:
    statuses = [c["status"] for c in results["claims"]]
    parts = [f"{statuses.count(s)} {s}" for s in STATUSES
             if statuses.count(s)]
    return ", ".join(parts) or "no claims"


def render_markdown(results: dict[str, Any]) -> str:
    env = results["environment"]
    out = [
        "# trainlab verify report", "",
        f"- created: {results['created']}  ",
        f"- scale: {results['scale']}, seed: {results['seed']}  ",
        f"- trainlab {results['trainlab_version']}, Python {env.get('python')}, "
        f"torch {env.get('torch')}, {env.get('threads')} threads on {env.get('device')}  ",
        f"- verdict: {_counts(results)}" + _interrupted(results),
        "", "| claim | status | summary | seconds |", "|---|---|---|---|",
    ]
    for c in results["claims"]:
        summary = str(c.get("summary", "")).replace("|", "\\|")
        out.append(f"| `{c['id']}` | **{c['status']}** | {summary} | {c.get('seconds', 0):.2f} |")
    for c in results["claims"]:
        out += ["", f"## {c['id']} — {c['status']}", "", f"*{c.get('section', '')}*", "",
                c.get("statement", ""), "", c.get("summary", ""), ""]
        rows = _rows(c)
        if rows:
            out += ["| quantity | measured | expected | tolerance |", "|---|---|---|---|"]
            out += [f"| {k} | {m} | {e} | {t} |" for k, m, e, t in rows]
        for fig in c.get("figures", []):
            out += ["", f"![{fig}]({fig})"]
    return "\n".join(out) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#1f2328;line-height:1.45}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #d0d7de;padding:.25em .6em;
text-align:left;vertical-align:top;font-size:.92em}th{background:#f6f8fa}
.status{font-weight:600;color:#fff;border-radius:4px;padding:.05em .45em}
section{border-top:1px solid #d0d7de;margin-top:1.6em}img{max-width:100%;border:1px solid #eee}
code{background:#f6f8fa;padding:.05em .3em;border-radius:3px}.meta{color:#57606a}
"""


def _badge(status: str) -> str:
    colour = _COLOURS.get(status, "#57606a")
    return f'<span class="status" style="background:{colour}">{html.escape(status)}</span>'


def _img(run_dir: Path | None, rel: str) -> str:
    """A figure of the run embedded inline: only a PNG file inside the run folder (a results.json
    naming ``../secret`` or an absolute path, or a link leading out, embeds nothing)."""
    if run_dir is not None:
        root = run_dir.resolve()
        path = (root / rel).resolve()
        if path.suffix.lower() == ".png" and path.is_relative_to(root) and path.is_file():
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            return f'<img alt="{html.escape(rel)}" src="data:image/png;base64,{data}">'
    return f"<p class=meta>figure missing: {html.escape(rel)}</p>"


def render_html(results: dict[str, Any], run_dir: str | Path | None = None) -> str:
    """The whole report as one HTML page; figures from ``run_dir`` embedded inline."""
    rd = Path(run_dir) if run_dir is not None else None
    env = results["environment"]
    esc = html.escape
    interrupted = _interrupted(results)
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<title>trainlab verify report</title>", f"<style>{_CSS}</style></head><body>",
        "<h1>trainlab verify report</h1>",
        f"<p class=meta>{esc(results['created'])} · scale {esc(str(results['scale']))} · "
        f"seed {esc(str(results['seed']))} · trainlab {esc(str(results['trainlab_version']))}"
        f" · Python {esc(str(env.get('python')))} · torch {esc(str(env.get('torch')))} · "
        f"{esc(str(env.get('threads')))} threads on {esc(str(env.get('device')))}</p>",
        f"<p><b>Verdict:</b> {esc(_counts(results))}"
        + (f" <b>{esc(interrupted.strip())}</b>" if interrupted else "") + "</p>",
        "<table><tr><th>claim</th><th>status</th><th>summary</th><th>seconds</th></tr>",
    ]
    for c in results["claims"]:
        parts.append(f"<tr><td><a href='#{esc(c['id'])}'><code>{esc(c['id'])}</code></a></td>"
                     f"<td>{_badge(c['status'])}</td><td>{esc(str(c.get('summary', '')))}</td>"
                     f"<td>{c.get('seconds', 0):.2f}</td></tr>")
    parts.append("</table>")
    for c in results["claims"]:
        parts.append(f"<section id='{esc(c['id'])}'><h2><code>{esc(c['id'])}</code> "
                     f"{_badge(c['status'])}</h2><p class=meta>{esc(str(c.get('section', '')))}</p>"
                     f"<p>{esc(str(c.get('statement', '')))}</p>"
                     f"<p><b>{esc(str(c.get('summary', '')))}</b></p>")
        rows = _rows(c)
        if rows:
            parts.append("<table><tr><th>quantity</th><th>measured</th><th>expected</th>"
                         "<th>tolerance</th></tr>")
            parts += [f"<tr><td>{esc(k)}</td><td>{esc(m)}</td><td>{esc(e)}</td><td>{esc(t)}</td></tr>"
                      for k, m, e, t in rows]
            parts.append("</table>")
        parts += [_img(rd, fig) for fig in c.get("figures", [])]
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(run_dir: str | Path) -> tuple[Path, Path]:
    """(Re-)render report.md and report.html of ``run_dir`` from its results.json."""
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    md = atomic_write_text(run_dir / "report.md", render_markdown(results))
    page = atomic_write_text(run_dir / "report.html", render_html(results, run_dir))
    return md, page
