"""report stage: ``reports/summary.md``, the test metrics of every task in one table.

Reads ``metrics/evaluate/*.json`` (the tasks of ``dvc.yaml``); writes ``reports/summary.md``.
"""

from pipeline import paths
from pipeline.errors import run_stage
from pipeline.io import atomic_path, read_json
from pipeline.metrics import format_table

STRATEGIES = {"gt_repeat": "GT-repeat", "model_repeat": "model-repeat"}


def main() -> None:
    rows = {}
    for task in paths.TASKS:
        results = read_json(paths.EVALUATE_METRICS / f"{task}.json")
        rows[f"{task.upper()} model"] = results["model"]
        for key, name in STRATEGIES.items():
            rows[f"{task.upper()} {name}"] = results[key]
    split = results["split"]
    text = f"# Test metrics ({split} split)\n\n{format_table(rows)}\n"
    with atomic_path(paths.REPORTS / "summary.md") as tmp:
        tmp.write_text(text)
    print(text)


if __name__ == "__main__":
    run_stage(main)
