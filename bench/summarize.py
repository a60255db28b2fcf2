#!/usr/bin/env python3
"""Turns compare_llama_cpp.sh's raw results into a markdown table.

Usage: summarize.py RESULTS_TSV

Each line of RESULTS_TSV is `TEST<TAB>PAIR<TAB>SYSTEM<TAB>ROUND<TAB>JSON`: TEST is `pp<N>`
(prefill N tokens) or `tg<M>@d<D>` (decode M tokens after D tokens of context), PAIR is
`bf16` or `q8` (Concord fp8 against llama.cpp Q8_0), SYSTEM is `concord` (JSON: one
`concord bench --json` line) or `llama.cpp` (JSON: one `llama-bench -o jsonl` line).
Cells are medians with min-max over the rounds; ratios are Concord's median over
llama.cpp's; the floor is Concord's decode bandwidth floor (bytes a token reads over the
read bandwidth measured at the run's thread count), with Concord's share of it.
"""

import json
import statistics
import sys
from collections import defaultdict

PAIRS = (("bf16", "llama.cpp bf16", "Concord bf16"), ("q8", "llama.cpp Q8_0", "Concord fp8"))


def tokens_per_second(test: str, system: str, record: dict) -> float:
    if system == "llama.cpp":
        return float(record["avg_ts"])
    return float(record["prefill_tok_s" if test.startswith("pp") else "decode_tok_s"])


def test_order(test: str) -> tuple:
    if test.startswith("pp"):
        return (0, int(test[2:]), 0)
    gen, depth = test[2:].split("@d")
    return (1, int(depth), int(gen))


def describe(test: str) -> str:
    if test.startswith("pp"):
        return f"prefill {test[2:]} tok/s"
    gen, depth = test[2:].split("@d")
    return f"decode {gen} tok/s" + (f" after {depth} tokens" if depth != "0" else "")


def cell(values: list) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rates = defaultdict(list)  # (test, pair, system) -> tok/s per round
    floors = defaultdict(list)  # (test, pair) -> Concord's floor per round
    with open(sys.argv[1], encoding="utf-8") as results:
        for number, line in enumerate(results, 1):
            if not line.strip():
                continue
            try:
                test, pair, system, _round, payload = line.rstrip("\n").split("\t", 4)
                record = json.loads(payload)
                rates[test, pair, system].append(tokens_per_second(test, system, record))
                if system == "concord" and not test.startswith("pp") and record.get("floor_tok_s"):
                    floors[test, pair].append(float(record["floor_tok_s"]))
            except (ValueError, KeyError, TypeError) as e:
                sys.exit(f"{sys.argv[1]}:{number}: unreadable result ({e}): {line.strip()}")
    tests = sorted({key[0] for key in rates}, key=test_order)
    header = ["", *(name for pair in PAIRS for name in (pair[1], pair[2], "ratio"))]
    header += [f"floor {pair[2]}" for pair in PAIRS]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for test in tests:
        row = [describe(test)]
        for pair, _, _ in PAIRS:
            theirs = rates.get((test, pair, "llama.cpp"), [])
            ours = rates.get((test, pair, "concord"), [])
            ratio = (
                f"{statistics.median(ours) / statistics.median(theirs):.2f}×"
                if ours and theirs
                else "–"
            )
            row += [cell(theirs), cell(ours), ratio]
        for pair, _, _ in PAIRS:
            floor = floors.get((test, pair), [])
            ours = rates.get((test, pair, "concord"), [])
            row.append(
                f"{statistics.median(floor):.1f} ({100 * statistics.median(ours) / statistics.median(floor):.0f}%)"
                if floor and ours
                else "–"
            )
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
