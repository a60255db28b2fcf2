"""Type stubs of the Rust extension module (python/src/)."""

from os import PathLike
from typing import Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

__version__: str

class ConcordError(RuntimeError):
    """An error from the Concord runtime; the message names the file, tensor or argument at fault."""

class TextStream(Iterator[str]):
    """The pieces of text of one generation; joined, they equal ``Model.generate``'s result."""

    def __iter__(self) -> "TextStream": ...
    def __next__(self) -> str:
        """The next piece of text; the GIL is released while tokens are computed."""

class Model:
    """A model loaded from a Hugging Face checkpoint directory, with its tokenizer."""

    @staticmethod
    def load(
        dir: Union[str, "PathLike[str]"],
        backend: str = "cpu",
        precision: Optional[str] = None,
        context: Optional[int] = None,
    ) -> "Model":
        """Loads the checkpoint in ``dir`` on ``backend`` ("cpu", "opencl", "cuda", "rocm",
        "ascend") at ``precision`` ("f32", "bf16", "fp8"; None = native), with room for
        ``context`` tokens (None = the model's maximum)."""
    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int = 64,
        temperature: float = 0.0,
        top_p: float = 1.0,
        top_k: int = 0,
        seed: int = 0,
        stop: Optional[Sequence[str]] = None,
        ignore_eos: bool = False,
        min_p: float = 0.0,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        repetition_penalty: float = 1.0,
    ) -> str:
        """Continues ``prompt`` and returns the generated text (without the prompt); greedy at
        temperature 0, seeded sampling otherwise; stops at EOS, ``max_tokens``, the context, or
        before the first ``stop`` string. ``min_p`` and the penalties are ``concord generate``'s
        (``--min-p``, ``--presence-penalty``, ``--frequency-penalty``, ``--repetition-penalty``).
        Releases the GIL while generating."""
    def stream(
        self,
        prompt: str,
        *,
        max_tokens: int = 64,
        temperature: float = 0.0,
        top_p: float = 1.0,
        top_k: int = 0,
        seed: int = 0,
        stop: Optional[Sequence[str]] = None,
        ignore_eos: bool = False,
        min_p: float = 0.0,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        repetition_penalty: float = 1.0,
    ) -> TextStream:
        """Like ``generate``, as an iterator over pieces of text as they are produced."""
    def logits(self, ids: Sequence[int]) -> npt.NDArray[np.float32]:
        """Float32 logits of every position of ``ids``, shape [len(ids), vocab_size]."""
    def encode(self, text: str, add_bos: bool = True) -> List[int]:
        """Token ids of ``text``; ``add_bos`` puts the BOS id first (as ``generate`` does)."""
    def decode(self, ids: Sequence[int], skip_special: bool = True) -> str:
        """Text of ``ids``; ``skip_special`` drops special tokens such as BOS and EOS."""
    @property
    def vocab_size(self) -> int:
        """The model's vocabulary size (columns of ``logits``)."""
    @property
    def context(self) -> int:
        """Longest sequence (prompt plus generated tokens) the model was loaded for."""
    @property
    def eos_token_ids(self) -> List[int]:
        """The ids that end generation."""
    @property
    def precision(self) -> str:
        """The precision it computes in ("f32", "bf16" or "fp8")."""
    @property
    def backend(self) -> str:
        """The backend it runs on."""

def backends() -> List[Dict[str, Union[str, bool, None]]]:
    """Every backend Concord knows: ``name``, ``available``, ``device`` and ``reason``."""
