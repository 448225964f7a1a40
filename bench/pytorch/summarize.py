"""Print a Markdown table from results/**/*.jsonl (the summary line of each run)."""
import glob, json, os, sys

here = os.path.dirname(os.path.abspath(__file__))
rows = []
for f in sorted(glob.glob(os.path.join(here, "results", "**", "*.jsonl"), recursive=True)):
    lines = [json.loads(l) for l in open(f) if l.strip()]
    s = next((l["summary"] for l in lines if "summary" in l), None)
    if s is None:
        continue
    rows.append((os.path.relpath(f, os.path.join(here, "results")), s))
print("| run (results/…) | threads | hidden | median s/epoch excl. 1st | 1st epoch s | total train s (15 ep) | s to 97.5% | s to 98.0% | final acc | best acc |")
print("|---|---|---|---|---|---|---|---|---|---|")
fmt = lambda v: "never" if v is None else v
for name, s in rows:
    print(f"| {name} | {s['threads']} | {'-'.join(map(str, s['hidden']))} | {s['median_epoch_seconds_excl_first']} | "
          f"{s['first_epoch_seconds']} | {s['total_train_seconds']} | {fmt(s['seconds_to_97.5'])} | {fmt(s['seconds_to_98.0'])} | "
          f"{s['final_test_accuracy']} | {s['best_test_accuracy']} |")
