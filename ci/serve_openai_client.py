#!/usr/bin/env python3
"""Drives `concord serve` with OpenAI's own Python client (the `openai` package).

Usage: python3 ci/serve_openai_client.py [BASE_URL]   (default http://127.0.0.1:8000/v1)
Start the server first, e.g. `concord serve --port 8000` (the demo model, id "demo").
Exits 0 when every check passes; skips (exit 0 with a note) when `openai` is not installed
(ci/serve-openai.sh installs it and fails instead).
"""

import sys

try:
    import openai
except ImportError:
    print("skipped: the openai package is not installed")
    sys.exit(0)


def main() -> None:
    base_url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/v1"
    client = openai.OpenAI(base_url=base_url, api_key="unused")

    models = client.models.list()
    model = models.data[0].id
    print(f"model: {model}")

    chat = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Hello"}],
        max_tokens=8,
        temperature=0,
        logprobs=True,
        top_logprobs=2,
    )
    choice = chat.choices[0]
    assert chat.object == "chat.completion"
    assert choice.finish_reason in ("stop", "length")
    assert chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens
    assert len(choice.logprobs.content) >= 1
    assert len(choice.logprobs.content[0].top_logprobs) == 2
    print(f"chat: {choice.message.content!r} ({choice.finish_reason})")

    pieces = []
    usage = None
    finish = None
    for chunk in client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Hello"}],
        max_tokens=8,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    ):
        assert chunk.object == "chat.completion.chunk"
        for c in chunk.choices:
            pieces.append(c.delta.content or "")
            finish = c.finish_reason or finish
        usage = chunk.usage or usage
    assert "".join(pieces) == choice.message.content, (pieces, choice.message.content)
    assert finish == choice.finish_reason
    assert usage.completion_tokens == chat.usage.completion_tokens
    print("chat stream: same text, usage chunk present")

    completion = client.completions.create(
        model=model, prompt="Once upon a time", max_tokens=12, temperature=0, logprobs=1
    )
    assert completion.object == "text_completion"
    assert len(completion.choices[0].logprobs.tokens) == completion.usage.completion_tokens
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(
            model=model, prompt="Once upon a time", max_tokens=12, temperature=0, stream=True
        )
        if c.choices
    )
    assert streamed == completion.choices[0].text
    print(f"completion: {completion.choices[0].text!r}; stream: same text")

    try:
        client.completions.create(model="no-such-model", prompt="x", max_tokens=1)
        raise AssertionError("an unknown model was accepted")
    except openai.NotFoundError as e:
        assert e.body["code"] == "model_not_found", e.body
    try:
        client.completions.create(model=model, prompt="x", max_tokens=1, presence_penalty=2.5)
        raise AssertionError("presence_penalty 2.5 was accepted")
    except openai.BadRequestError as e:
        assert e.body["param"] == "presence_penalty", e.body
    print("errors: 404 unknown model, 400 naming the field")

    # 64 concurrent streaming requests of mixed lengths, each equal to the same request alone.
    import concurrent.futures

    def stream_text(i: int) -> str:
        stream = client.completions.create(
            model=model,
            prompt="It was the best of times," + " it was" * (i % 7),
            max_tokens=4 + i % 13,
            temperature=0.8,
            seed=i,
            stream=True,
        )
        return "".join(c.choices[0].text for c in stream if c.choices)

    alone = [stream_text(i) for i in range(64)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
        together = list(pool.map(stream_text, range(64)))
    assert together == alone, [i for i in range(64) if together[i] != alone[i]]
    print("64 concurrent streams: each equals the same request alone")

    # A client that leaves mid-stream: the server cancels its request.
    import urllib.request

    def metric(name: str) -> float:
        text = urllib.request.urlopen(base_url.rsplit("/v1", 1)[0] + "/metrics").read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name):
                total += float(line.split()[-1])
        return total

    before = metric('concord_requests_finished_total{reason="cancelled"}')
    stream = client.completions.create(
        model=model, prompt="It was", max_tokens=400, stream=True
    )
    next(iter(stream))
    stream.close()
    import time

    for _ in range(200):
        if metric('concord_requests_finished_total{reason="cancelled"}') > before:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("a disconnected stream was not cancelled")
    print("disconnect: the request was cancelled")
    print("ok")


if __name__ == "__main__":
    main()
