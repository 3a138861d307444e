"""Given, tested: the peak tensor memory a function allocates, measured on CPU.

`torch.cuda.max_memory_allocated` answers this on a GPU only. On CPU, `peak_memory` watches
every tensor operation through a `TorchDispatchMode`: each operation's output that owns a
storage it has not seen before adds that storage's bytes to a running total, and the storage's
release (a weakref finalizer) subtracts them. The peak of that total is the extra memory the
function needed at its worst moment: tensors that existed before the call (its inputs, a
model's weights) are not counted, and storages shared by views are counted once. Memory that
an operator allocates and frees inside itself (a kernel's scratch space) is invisible to it.

Measure in `torch.no_grad()` unless the autograd graph's saved tensors are meant to count.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class _LiveStorageBytes(TorchDispatchMode):
    """Adds up the bytes of the storages created inside the mode that are still alive."""

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._alive: set[int] = set()             # data pointers of the storages being counted

    def _release(self, pointer: int, nbytes: int) -> None:
        self._alive.discard(pointer)
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        # an output that shares its storage with an input is a view or an in-place result
        inputs = {leaf.untyped_storage().data_ptr() for leaf in tree_leaves((args, kwargs))
                  if isinstance(leaf, torch.Tensor)}
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self._count(leaf.untyped_storage(), inputs)
        return out

    def _count(self, storage: torch.UntypedStorage, inputs: set[int]) -> None:
        pointer, nbytes = storage.data_ptr(), storage.nbytes()
        if nbytes == 0 or pointer in self._alive or pointer in inputs:
            return
        self._alive.add(pointer)
        self.live += nbytes
        self.peak = max(self.peak, self.live)
        weakref.finalize(storage, self._release, pointer, nbytes)


def peak_memory(fn: Callable[..., Any], *args, **kwargs) -> tuple[Any, int]:
    """Call fn(*args, **kwargs) -> (its result, the peak bytes of tensor storage it allocated
    and held at once). Views of an input and in-place updates of one allocate nothing."""
    counter = _LiveStorageBytes()
    with counter:
        result = fn(*args, **kwargs)
    return result, counter.peak
