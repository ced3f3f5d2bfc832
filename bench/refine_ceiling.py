"""How far a written guideline can move a labeler: label the seed rows under hand-written guideline
variants and report, per variant, the metric, how often the rare label is predicted, and how well the
labeler's probability of that label ranks the rows that have it (AUROC; 0.5 = not at all).

Where no wording moves the predictions and the probability barely ranks the rows, no rule or definition
that `refine` could propose will move the test metric either: that is the labeler's ceiling for this
set, not the loop's. The variants were written by us from the task description alone (no test row
read); the rows are the seed/train file.

    python bench/refine_ceiling.py [--set civil] [--model qwen2.5-coder-0.5b] [--workdir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from refine import FILES, config_for  # noqa: E402

# each variant as refine would write it: label definitions and numbered rules, rendered by Guideline.prompt_text
# (the task's label list first, then the definitions and rules)
RULES = {
    "civil": {
        "rare": "toxic",
        "variants": {
            "insult rule": ({}, ["A comment that insults a person or a group (calling them stupid, idiots, clowns, liars, morons, losers) is toxic."]),
            "insult and mockery rules": ({}, ["A comment that insults a person or a group (calling them stupid, idiots, clowns, liars, morons, losers) is toxic.",
                                              "A comment that mocks, ridicules or demeans people for their race, religion, sex, or politics is toxic."]),
            "label definitions": ({"toxic": "insults, name-calling, profanity, mockery, threats, or contempt for a person or group.",
                                   "not toxic": "disagreement or criticism stated without insults."}, []),
        },
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", default="civil", choices=sorted(RULES))
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--workdir")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import pandas as pd
    from sklearn.metrics import roc_auc_score

    import labelmill

    seed_path, _, metric = FILES[args.set]
    seed = pd.read_csv(seed_path)
    config = config_for(args.set, seed)
    config["model"] = {**config["model"], "name": args.model}
    rare = RULES[args.set]["rare"]
    from labelmill.guideline import Guideline, Rule

    variants = {"the config's guideline": config["guidelines"]} | {
        name: Guideline(args.set, config["guidelines"], definitions, [Rule(r) for r in rules]).prompt_text()
        for name, (definitions, rules) in RULES[args.set]["variants"].items()}
    figures: dict = {"set": args.set, "model": args.model, "rows": len(seed), "rare_label": rare, "rare_rows": int((seed["label"] == rare).sum())}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for number, (name, guideline) in enumerate(variants.items()):
            cfg = {**config, "guidelines": guideline}
            out = workdir / f"variant-{number}.csv"
            labelmill.run(cfg, seed, output=out, project=workdir / "ceiling.db")
            labeled = pd.read_csv(out)
            p_rare = labeled.apply(lambda r: r["llm_confidence"] if r["llm_label"] == rare else 1 - r["llm_confidence"], axis=1) \
                if len(config["labels"]) == 2 else None
            figures[name] = {
                metric: round(float(labelmill.evaluate(cfg, out)[metric]), 4),
                f"predicted_{rare.replace(' ', '_')}": int((labeled["llm_label"] == rare).sum()),
                "auroc": None if p_rare is None else round(float(roc_auc_score(seed["label"] == rare, p_rare)), 3),
                "max_p": None if p_rare is None else round(float(p_rare.max()), 3),
            }
            print(name, figures[name], file=sys.stderr, flush=True)
    print(json.dumps(figures) if args.json else "\n".join(f"{k}: {v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
