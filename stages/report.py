"""report stage: ``reports/summary.md``, the test metrics of every evaluated model in one table.

Reads ``metrics/evaluate/*.json`` (the evaluate items of ``dvc.yaml``: SEL, the WSEL base
model of Step 1 and the WSEL model retrained on refined labels) and ``metrics/refine.json``,
and for the AVVP task ``metrics/avvp/evaluate/{han,han_lr}.json`` and
``metrics/avvp/refine.json``; writes ``reports/summary.md``.
"""

from pipeline.avvp.metrics import format_table as format_avvp_table
from pipeline.config import paths
from pipeline.errors import run_stage
from pipeline.evaluation.metrics import format_table
from pipeline.io import atomic_path, read_json

NAMES = {"sel": "SEL", "wsel": "WSEL base", "wsel_refined": "WSEL refined"}
STRATEGIES = {"gt_repeat": "GT-repeat", "model_repeat": "model-repeat"}


def _rows(task: str, results: dict) -> dict[str, dict]:
    rows = {f"{NAMES[task]} model": results["model"]}
    if "model_b2ilc" in results:
        rows[f"{NAMES[task]} model + B2ILC"] = results["model_b2ilc"]
    if task != "wsel_refined":  # the naive strategies do not depend on training
        rows.update({f"{NAMES[task]} {name}": results[key] for key, name in STRATEGIES.items()})
    return rows


def _refine_lines(refine: dict) -> str:
    def cell(key: str) -> str:
        value = refine.get(key)
        return "-" if value is None else f"{100 * value:.1f}"

    keys = ("precision", "recall", "f1", "exact_match", "background_f1")
    return (
        f"\n## Slice pseudo-labels of the training split ({refine['labels']}, "
        f"tau {refine['tau']})\n\n"
        "| Precision | Recall | F1 | Exact match | Background-slice F1 |\n"
        "|---:|---:|---:|---:|---:|\n| " + " | ".join(cell(k) for k in keys) + " |\n"
    )


AVVP_NAMES = {"han": "HAN", "han_lr": "HAN + LR"}


def _avvp_lines() -> str:
    rows = {AVVP_NAMES[t]: read_json(paths.avvp_evaluate_metrics(t)) for t in paths.AVVP_TASKS}
    quality = read_json(paths.AVVP_REFINE_METRICS)["val_quality"]
    f1 = {key: quality[f"{key}_f1"] for key in ("audio", "visual", "all")}
    cells = " | ".join("-" if v is None else f"{100 * v:.1f}" for v in f1.values())
    return (
        "\n## AVVP on LLP (seed 004 Table 6): F1 in percent [95 % CI over test videos]\n\n"
        + format_avvp_table(rows)
        + "\nSlice labels of HAN + LR on the validation videos, F1 against their dense labels:\n\n"
        "| Audio | Visual | All |\n|---:|---:|---:|\n| " + cells + " |\n"
    )


def main() -> None:
    rows = {}
    for task in paths.EVALUATED:
        results = read_json(paths.EVALUATE_METRICS / f"{task}.json")
        rows.update(_rows(task, results))
    text = f"# Test metrics ({results['split']} split)\n\n{format_table(rows)}"
    text += _refine_lines(read_json(paths.REFINE_METRICS))
    text += _avvp_lines()
    with atomic_path(paths.REPORTS / "summary.md") as tmp:
        tmp.write_text(text)
    print(text)


if __name__ == "__main__":
    run_stage(main)
