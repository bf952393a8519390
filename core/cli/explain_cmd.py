"""``recfeat explain-eval`` (the faithfulness tests of explanations, docs/explain.md) and the
table ``recfeat recommend --explain`` prints. The commands parse flags and print;
``recfeat.api`` (``explain``, ``explain_eval``) does the work."""

from __future__ import annotations

from typing import Any

import click

import recfeat.api as api

#: the table fits a terminal of this width
WIDTH = 80


def _fit(text: str, width: int = WIDTH) -> str:
    """``text`` cut to ``width`` after a whole list entry (", ") or word, so a number is
    never cut in half."""
    if len(text) <= width:
        return text
    cut = text[: width - 3]
    for sep in (", ", " "):
        if sep in cut.strip():
            return cut[: cut.rfind(sep)].rstrip(" ,") + "..."
    return cut + "..."


def explanation_lines(expl: dict[str, Any]) -> list[str]:
    """One user's explanation (``recfeat.explain``'s dict) as table lines of <= 80 columns."""
    from recfeat.cli.terminal import clean

    lines = [_fit(f"{clean(expl['user'])} ({clean(expl['model'])}, {expl['history_size']} "
                  "history items):")]  # fmt: skip
    for entry in expl["items"]:
        score = "n/a" if entry["score"] is None else f"{entry['score']:.4f}"
        head, tail = f"  {entry['rank']:>3}. ", f"  {score}"  # the score is never the part cut
        lines.append(head + _fit(clean(entry["item"]), WIDTH - len(head) - len(tail)) + tail)
        if entry.get("history"):
            cited = ", ".join(f"{clean(h['item'])} {h['contribution']:+.2f}" for h in entry["history"])
            lines.append(_fit(f"       from your history: {cited}"))
        for s in entry.get("sentences", []):
            lines.append(_fit(f"       you wrote ({s['similarity']:.2f}): \"{clean(s['text'])}\""))
        if entry.get("tokens"):
            words = ", ".join(clean(t["token"]) for t in entry["tokens"])
            lines.append(_fit(f"       shared words: {words}"))
    for note in expl.get("notes", []):
        lines.append(_fit(f"  note: {clean(note)}"))
    return lines


@click.command("explain-eval")
@click.argument("data")
@click.option("--format", "fmt", default="auto", show_default=True, help="Dataset format.")
@click.option("--models", default=None,
              help="Comma-separated models [default: content,ease-text,ease,als,hybrid-als,"
              "sasrec-text].")  # fmt: skip
@click.option("--features", "features_path", default=None,
              help="Review- or item-level features .parquet (recfeat extract), for text models.")  # fmt: skip
@click.option("--split", "split_kind", default="random", show_default=True, help="Split kind.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the split, the user sample and the random draws.")  # fmt: skip
@click.option("--test-fraction", type=float, default=0.2, show_default=True)
@click.option("--users", type=int, default=300, show_default=True,
              help="Test users sampled per citation size.")  # fmt: skip
@click.option("--cite", default="1,3", show_default=True,
              help="Citation sizes: how many history items an explanation cites.")  # fmt: skip
@click.option("--draws", type=int, default=5, show_default=True,
              help="Random history subsets per size, the baseline.")  # fmt: skip
@click.option("--k", type=int, default=10, show_default=True, help="The top list.")
@click.option("--min-history", type=int, default=2, show_default=True,
              help="Fewest distinct training items of a sampled user (at least 2 x the "
              "citation size anyway).")  # fmt: skip
@click.option("--out", "out_path", required=True,
              help="Path stem of the report: writes OUT.json, OUT.md and OUT.png.")  # fmt: skip
def explain_eval_command(data, fmt, models, features_path, split_kind, seed, test_fraction,
                         users, cite, draws, k, min_history, out_path) -> None:  # fmt: skip
    """Measure whether explanations are faithful: remove (or keep only) the history items an
    explanation cites and count how often the item leaves (stays in) the top K, against
    random history of the same size; per model, with bootstrap intervals."""
    from recfeat.cli.terminal import echo

    result = api.explain_eval(
        data, models, features_path, out=out_path, format=fmt, split=split_kind, seed=seed,
        test_fraction=test_fraction, users=users, cite=cite, draws=draws, k=k,
        min_history=min_history,
    )  # fmt: skip
    for row in result["models"]:
        if "skipped" in row:
            echo(f"{row['model']}: {row['skipped']}")
            continue
        for c, entry in row["by_cite"].items():
            ratio = entry.get("deletion_ratio")
            shown = "n/a" if ratio is None else (
                f"{ratio['ratio']:.2f}x (95% CI {ratio['low']:.2f}-{ratio['high']:.2f})")  # fmt: skip
            echo(f"{row['model']}, c = {c}: deletion cited / random {shown} over "
                 f"{entry.get('users', 0)} users")  # fmt: skip
    echo(f"wrote {', '.join(result['outputs'])}")


def register(cli: click.Group) -> None:
    cli.add_command(explain_eval_command)
