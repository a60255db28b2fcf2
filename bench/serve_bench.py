#!/usr/bin/env python3
"""Drives an OpenAI-compatible server with N concurrent streaming clients and reports output
tokens/s, time to first token and inter-token latency (issue 16 item 6).

Usage:
  serve_bench.py run --url http://127.0.0.1:8000 --label concord [options] >> results.jsonl
  serve_bench.py table results.jsonl

`run` sends, at each concurrency C, C clients at once, each sending --requests-per-client
streaming `/v1/completions` requests one after the other: fixed prompts of mixed lengths (the
same for every server), temperature 0, a fixed `max_tokens` and `ignore_eos: true` (both
Concord and llama-server accept it), so every request generates exactly `max_tokens` tokens.
It prints one JSON line per concurrency. `table` prints the markdown table of those lines, the
servers side by side.

Definitions (per concurrency; all requests of that concurrency):
  output tokens/s  completion tokens of all requests / wall time from the first request sent
                   to the last answer complete.
  TTFT             request sent -> first streamed token chunk.
  ITL              gap between consecutive token chunks of one request (one chunk per token;
                   `chunks/token` in the JSON says whether a server merged tokens).
  p50, p99         nearest rank over all requests' values.

Python's standard library only (http.client, threads): nothing to install. Loopback only.
"""

import argparse
import http.client
import json
import math
import random
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

# Words of the fixed prompts (ASCII: one token per byte with byte-level vocabularies).
WORDS = (
    "the of and to in is was for on that with as by at from his it an were are which this be "
    "has had not have one first new after two their its also but they into time when city "
    "year only may over more other most such where between made during three used world"
).split()


def prompts(lengths, count, seed):
    """`count` prompts cycling through `lengths` (characters), fixed by `seed`."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        target = lengths[i % len(lengths)]
        text = ""
        while len(text) < target:
            text += rng.choice(WORDS) + " "
        out.append(text[:target])
    return out


def nearest_rank(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def one_request(url, body):
    """Sends one streaming completion; returns its timings and token counts."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=3600)
    payload = json.dumps(body)
    sent = time.perf_counter()
    conn.request(
        "POST", "/v1/completions", payload, {"content-type": "application/json"}
    )
    response = conn.getresponse()
    if response.status != 200:
        text = response.read().decode("utf-8", "replace")
        conn.close()
        return {"error": f"HTTP {response.status}: {text[:300]}"}
    chunk_times = []
    usage = None
    while True:
        line = response.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        now = time.perf_counter()
        chunk = json.loads(data)
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            # A token chunk: text (possibly empty) before the finish_reason, or text that
            # comes with it (llama-server may send the last tokens in the finishing chunk).
            text = choice.get("text")
            if text is not None and (choice.get("finish_reason") is None or text):
                chunk_times.append(now)
    done = time.perf_counter()
    conn.close()
    if not chunk_times:
        return {"error": "no token chunk in the stream"}
    completion_tokens = usage["completion_tokens"] if usage else len(chunk_times)
    return {
        "ttft": chunk_times[0] - sent,
        "gaps": [b - a for a, b in zip(chunk_times, chunk_times[1:])],
        "chunks": len(chunk_times),
        "completion_tokens": completion_tokens,
        "prompt_tokens": usage["prompt_tokens"] if usage else None,
        "latency": done - sent,
        "sent": sent,
        "done": done,
    }


def run_level(args, concurrency, texts):
    bodies = [
        {
            "model": args.model,
            "prompt": texts[i % len(texts)],
            "max_tokens": args.max_tokens,
            "temperature": 0,
            "ignore_eos": True,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        for i in range(concurrency * args.requests_per_client)
    ]
    lock = threading.Lock()
    results = []

    def client(index):
        for body in bodies[index :: concurrency]:
            result = one_request(args.url, body)
            with lock:
                results.append(result)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(client, range(concurrency)))
    wall = time.perf_counter() - start
    errors = [r["error"] for r in results if "error" in r]
    good = [r for r in results if "error" not in r]
    tokens = sum(r["completion_tokens"] for r in good)
    chunks = sum(r["chunks"] for r in good)
    ttfts = [r["ttft"] for r in good]
    gaps = [g for r in good for g in r["gaps"]]
    prompt_tokens = [r["prompt_tokens"] for r in good if r["prompt_tokens"] is not None]
    ms = lambda v: None if v is None else round(v * 1000, 1)  # noqa: E731
    return {
        "label": args.label,
        "concurrency": concurrency,
        "requests": len(results),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "wall_s": round(wall, 2),
        "output_tokens": tokens,
        "output_tok_s": round(tokens / wall, 2),
        "prompt_tokens_mean": round(sum(prompt_tokens) / len(prompt_tokens), 1)
        if prompt_tokens
        else None,
        "chunks_per_token": round(chunks / tokens, 3) if tokens else None,
        "ttft_p50_ms": ms(nearest_rank(ttfts, 0.50)),
        "ttft_p99_ms": ms(nearest_rank(ttfts, 0.99)),
        "itl_p50_ms": ms(nearest_rank(gaps, 0.50)),
        "itl_p99_ms": ms(nearest_rank(gaps, 0.99)),
    }


def run(args):
    lengths = [int(x) for x in args.prompt_lengths.split(",")]
    levels = [int(x) for x in args.concurrency.split(",")]
    # Every level gets prompts no earlier level (nor the warm-up) sent, so neither server's
    # prefix cache serves a level from a previous one; both servers get the same prompts.
    per_level = [c * args.requests_per_client for c in levels]
    texts = prompts(lengths, 1 + sum(per_level), args.seed)
    # Warm-up: one short request, not measured (first-call allocations, page faults).
    warm = one_request(
        args.url,
        {"model": args.model, "prompt": texts[0], "max_tokens": 2, "temperature": 0,
         "ignore_eos": True, "stream": True},
    )
    if "error" in warm:
        sys.exit(f"serve_bench.py: {args.url}: {warm['error']}")
    start = 1
    for c, count in zip(levels, per_level):
        line = run_level(args, c, texts[start:start + count])
        start += count
        print(json.dumps(line), flush=True)
        print(
            f"[serve_bench] {args.label} c={c}: {line['output_tok_s']} tok/s, "
            f"TTFT p50 {line['ttft_p50_ms']} ms, ITL p50 {line['itl_p50_ms']} ms, "
            f"{line['errors']} errors",
            file=sys.stderr,
            flush=True,
        )


def table(args):
    rows = [json.loads(l) for l in open(args.results) if l.startswith("{")]
    labels = list(dict.fromkeys(r["label"] for r in rows))
    levels = sorted({r["concurrency"] for r in rows})
    cell = {(r["label"], r["concurrency"]): r for r in rows}
    head = ["concurrency"]
    for label in labels:
        head += [f"{label} tok/s", f"{label} TTFT p50/p99 ms", f"{label} ITL p50/p99 ms"]
    if len(labels) == 2:
        head.append(f"tok/s {labels[0]}/{labels[1]}")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for c in levels:
        row = [str(c)]
        for label in labels:
            r = cell.get((label, c))
            if r is None:
                row += ["–", "–", "–"]
                continue
            errors = f" ({r['errors']} errors)" if r["errors"] else ""
            row += [
                f"{r['output_tok_s']:.1f}{errors}",
                f"{r['ttft_p50_ms']:.0f} / {r['ttft_p99_ms']:.0f}",
                f"{r['itl_p50_ms']:.0f} / {r['itl_p99_ms']:.0f}",
            ]
        if len(labels) == 2:
            a, b = cell.get((labels[0], c)), cell.get((labels[1], c))
            row.append(f"{a['output_tok_s'] / b['output_tok_s']:.2f}×" if a and b and b["output_tok_s"] else "–")
        print("| " + " | ".join(row) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="benchmark one server; JSON lines on stdout")
    r.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    r.add_argument("--label", required=True, help="the server's name in the results")
    r.add_argument("--model", default="model", help="the `model` field of the requests")
    r.add_argument("--concurrency", default="1,8,32,128", help="comma-separated levels")
    r.add_argument("--requests-per-client", type=int, default=1)
    r.add_argument("--max-tokens", type=int, default=32)
    r.add_argument("--prompt-lengths", default="16,48,128",
                   help="prompt lengths in characters, cycled (comma-separated)")
    r.add_argument("--seed", type=int, default=16)
    t = sub.add_parser("table", help="markdown table of the results")
    t.add_argument("results")
    args = parser.parse_args()
    for name in ("requests_per_client", "max_tokens"):
        if getattr(args, name, 1) < 1:
            sys.exit(f"serve_bench.py: --{name.replace('_', '-')} must be at least 1")
    run(args) if args.command == "run" else table(args)


if __name__ == "__main__":
    main()
