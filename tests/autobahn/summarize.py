#!/usr/bin/env python3
"""Summarise an Autobahn|Testsuite fuzzingclient report (index.json).

Usage: summarize.py REPORT_DIR/index.json [--expected CASES.json] [--agent NAME] [--strict]
                    [--allow-non-strict "6.4.3 6.4.4"]

Prints
  autobahn: OK=N NON-STRICT=N INFORMATIONAL=N UNIMPLEMENTED=N FAILED=N of TOTAL
  failed: <case ids>                 (behavior FAILED)
  missing (never ran, counted as FAILED): N cases: FIRST .. LAST   (if any)
  non-strict: <case ids>             (if any)
  close: OK=N WRONG CODE=N UNCLEAN=N FAILED=N FAILED BY CLIENT=N INFORMATIONAL=N
  close-not-ok: <case id>=<verdict>/<remote close code> ...

"behavior" is Autobahn's main verdict (the Pass/Fail column of its HTML
report); "behaviorClose" is the closing-handshake verdict (the close-code
column). A case that wstest was told to run but that is absent from the report
(typically: the server died or stopped accepting connections) counts as FAILED
and is listed as MISSING.

Exit status: 0 if nothing FAILED or went MISSING (with --strict: if every case
is OK or INFORMATIONAL, or NON-STRICT and listed in --allow-non-strict, and
every close verdict is OK or INFORMATIONAL), 1 otherwise, 2 if the report
cannot be read.
"""
import argparse
import json
import sys


def case_key(case_id):
    return tuple(int(p) for p in case_id.split("."))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("index")
    ap.add_argument("--expected", help="JSON list of case ids wstest was asked to run")
    ap.add_argument("--agent", help="agent name in the report (default: the only one)")
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("--allow-non-strict", default="",
                    help="space-separated case ids that may be NON-STRICT under --strict")
    args = ap.parse_args()

    try:
        with open(args.index) as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        print(f"autobahn: no report ({e})")
        return 2
    if args.agent:
        results = report.get(args.agent, {})
    elif len(report) == 1:
        results = next(iter(report.values()))
    else:
        results = {}
    expected = set(results)
    if args.expected:
        with open(args.expected) as f:
            expected |= set(json.load(f))

    main_cats = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
    close_cats = ["OK", "WRONG CODE", "UNCLEAN", "FAILED", "FAILED BY CLIENT", "INFORMATIONAL"]
    counts = dict.fromkeys(main_cats, 0)
    close_counts = dict.fromkeys(close_cats, 0)
    failed, missing, non_strict, other, close_bad = [], [], [], [], []

    for cid in sorted(expected, key=case_key):
        r = results.get(cid)
        if r is None:
            counts["FAILED"] += 1
            missing.append(cid)
            continue
        b = r.get("behavior", "FAILED")
        if b not in counts:  # e.g. NO_CLOSE, or anything unexpected
            other.append(f"{cid}={b}")
            b = "FAILED"
        counts[b] += 1
        if b == "FAILED":
            failed.append(cid)
        elif b == "NON-STRICT":
            non_strict.append(cid)
        bc = r.get("behaviorClose", "FAILED")
        close_counts[bc] = close_counts.get(bc, 0) + 1
        if bc not in ("OK", "INFORMATIONAL"):
            close_bad.append(f"{cid}={bc}/{r.get('remoteCloseCode')}")

    total = len(expected)
    print("autobahn: " + " ".join(f"{k}={counts[k]}" for k in main_cats) + f" of {total}")
    print("failed: " + (" ".join(failed) if failed else "none"))
    if missing:
        span = missing[0] if len(missing) == 1 else f"{missing[0]} .. {missing[-1]}"
        print(f"missing (never ran, counted as FAILED): {len(missing)} cases: {span}"
              " -- did the server crash or stop accepting connections?")
    if non_strict:
        print("non-strict: " + " ".join(non_strict))
    if other:
        print("unexpected verdicts (counted as FAILED): " + " ".join(other))
    print("close: " + " ".join(f"{k}={v}" for k, v in close_counts.items()))
    if close_bad:
        print("close-not-ok: " + " ".join(close_bad))

    if counts["FAILED"]:
        return 1
    unexpected_non_strict = [cid for cid in non_strict if cid not in args.allow_non_strict.split()]
    if args.strict and unexpected_non_strict:
        print("non-strict, and not allowed: " + " ".join(unexpected_non_strict))
    if args.strict and (unexpected_non_strict or counts["UNIMPLEMENTED"] or close_bad):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
