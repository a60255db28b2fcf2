"""Concord from Python: load a DeepSeek-V3-architecture checkpoint and generate.

    import concord
    model = concord.Model.load("models/demo")
    print(model.generate("It was the best of times,", max_tokens=20))
    for piece in model.stream("Once upon a time", temperature=0.8, seed=1):
        print(piece, end="", flush=True)

``Model.logits(ids)`` returns a float32 numpy array [len(ids), vocab_size];
``concord.backends()`` says which backends can run here. Errors raise ``ConcordError``
with the runtime's message.
"""

from ._concord import ConcordError, Model, TextStream, __version__, backends

__all__ = ["ConcordError", "Model", "TextStream", "backends", "__version__"]
