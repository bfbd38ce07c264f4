"""Is the learning real? The DLS of a pipeline (default: pipelines/demo.yaml on
the `demo` synthetic cohorts) against the true labels of the internal and
external validation patients together, and the same pipeline trained on
permuted training labels (which must not beat chance).

    make bench-learning          # after `make demo`
    python3 benches/learning.py --radpipe target/debug/radpipe

The permuted run: institution 1's CPS values are shuffled (seeded) among the
training patients only, in a copy of its table with an added `stratum` column
holding the true label; the split is stratified by `stratum`, so every patient
stays in its partition, while `embed` and `fuse` learn from the permuted label.
Validation patients keep their true CPS. Both runs share the store, so the
images are not processed again. Standard library only.
"""
import argparse
import csv
import json
import os
import random
import subprocess


def auc(scores, labels):
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run(radpipe, pipeline, sets):
    cmd = [radpipe, "run", "--json", pipeline] + [a for s in sets for a in ("--set", s)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout)


def evaluate(data, truth_cohorts):
    """Pooled and per-cohort AUC of fuse.dls and embed scores against the true labels."""
    part = {r["patient_id"]: r["partition"] for r in read_csv("results/split/partition.csv")}
    truth = {}
    for cohort in truth_cohorts:
        for r in read_csv(os.path.join(data, cohort, "clinical.csv")):
            truth[r["patient_id"]] = (cohort, int(float(r["cps"]) >= 20))
    groups = {"internal": [], "external": []}
    for pid, (cohort, y) in truth.items():
        if cohort == "external":
            groups["external"].append((pid, y))
        elif part.get(pid) == "internal":
            groups["internal"].append((pid, y))
    groups["internal+external"] = groups["internal"] + groups["external"]
    out = {}
    for g, members in groups.items():
        ys = [y for _, y in members]
        row = {"n": len(members)}
        for name, path, key in [("DLS", "fuse", "dls"), ("T1WI", "embed", "t1"), ("T2WI", "embed", "t2"), ("CE-T1WI", "embed", "ce_t1")]:
            s = [json.load(open(f"results/{path}/{pid}/scores.json"))[key] for pid, _ in members]
            row[name] = round(auc(s, ys), 3)
        out[g] = row
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--radpipe", default="target/debug/radpipe")
    ap.add_argument("--pipeline", default="pipelines/demo.yaml")
    ap.add_argument("--data", default="data/demo")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    run(args.radpipe, args.pipeline, [])
    real = evaluate(args.data, ["institution1", "external"])
    # The pipeline's own Table 2: DeLong tests of the DLS against each sequence.
    table2 = {m["id"]: m for m in json.load(open("results/table2/metrics.json"))}
    delong = {
        f"{c}: DLS vs {s}": (round(table2[f"table2/{c}/DLS_vs_{s}/auc_diff"]["value"], 3), table2[f"table2/{c}/DLS_vs_{s}/delong_p"]["value"])
        for c in ("internal", "external")
        for s in ("T1WI", "T2WI", "CE-T1WI")
    }

    part = {r["patient_id"]: r["partition"] for r in read_csv("results/split/partition.csv")}
    rows = read_csv(os.path.join(args.data, "institution1", "clinical.csv"))
    train = [i for i, r in enumerate(rows) if part.get(r["patient_id"]) == "train"]
    cps = [rows[i]["cps"] for i in train]
    random.Random(args.seed).shuffle(cps)
    for r in rows:
        r["stratum"] = str(int(float(r["cps"]) >= 20))
    for i, v in zip(train, cps):
        rows[i]["cps"] = v
    permuted_dir = args.data.rstrip("/") + "-permuted"
    os.makedirs(os.path.join(permuted_dir, "institution1"), exist_ok=True)
    table = os.path.join(permuted_dir, "institution1", "clinical.csv")
    with open(table, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    # The same pipeline, stratified by the true label, reading the permuted table.
    text = open(args.pipeline).read().replace("    cohort: institution1\n", "    cohort: institution1\n    stratify: stratum\n", 1)
    permuted_pipeline = ".learning-permuted.yaml"
    with open(permuted_pipeline, "w") as f:
        f.write(text)
    try:
        run(args.radpipe, permuted_pipeline, [f"cohorts.institution1.table={table}"])
        permuted_part = {r["patient_id"]: r["partition"] for r in read_csv("results/split/partition.csv")}
        assert permuted_part == part, "the permuted run must keep every patient in its partition"
        shuffled = evaluate(args.data, ["institution1", "external"])
    finally:
        os.remove(permuted_pipeline)
        run(args.radpipe, args.pipeline, [])  # restore results/ (cached)

    print(json.dumps({"true_labels": real, "permuted_training_labels": shuffled, "delong_auc_difference_and_p": delong}, indent=1))
    print("\n| training labels | cohort | n | DLS | T1WI | T2WI | CE-T1WI |")
    print("|---|---|---|---|---|---|---|")
    for name, res in [("true", real), ("permuted", shuffled)]:
        for g, r in res.items():
            print(f"| {name} | {g} | {r['n']} | {r['DLS']:.3f} | {r['T1WI']:.3f} | {r['T2WI']:.3f} | {r['CE-T1WI']:.3f} |")
    print("\n| comparison | AUC difference | P (paired DeLong) |\n|---|---|---|")
    for k, (d, p) in delong.items():
        print(f"| {k} | {d:+.3f} | {p:.3g} |")


if __name__ == "__main__":
    main()
