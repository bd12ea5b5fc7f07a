"""Bound what reading a checkpoint costs, before torch or any unpickler reads a byte of it (issue 24).

A pickle decides how much work its reader does. Found by a hostile probe, each with an
allowed global or none at all: a 1 MB file nesting a tuple 10**6 deep (hashing it as a dict
key overflows the C stack: the process dies), ``bytearray(3_000_000_000)`` in a 182-byte file,
a numpy object array numpy allocates before checking it, a legacy storage declaring 10**9
elements (torch allocates them before reading any data), ``_codecs.encode(text, "punycode")``
(quadratic: 42 s for 61 kB), and 20,000 integer keys chosen to share one hash (4 s, then
quadratic). :func:`scan_checkpoint` reads every pickle record of the file exactly where torch
will read it -- the zip format's ``*.pkl`` members; the legacy format's magic number, protocol,
sys_info, main and storage-key records and its storage blocks; the legacy tar format's
``storages``, ``tensors`` and ``pickle`` members -- and interprets the opcodes without
constructing anything: no global is imported or called. Every value it tracks carries its
nesting depth, its size once expanded (a tuple that repeats a memoised tuple is hashed in
full every time), its constant value when small, and what the checks need (a storage's
bytes, a dtype's item size). A file is refused (:class:`Refusal`) as soon as reading it would
go past one of these bounds (module constants), or as unreadable (:class:`Unreadable`) where
torch would fail anyway:

* ``MAX_DEPTH`` (100) levels of nesting, memo included (big-lama's OmegaConf config: 22);
* ``MAX_OPS`` (2**20) opcodes per file, all records together (big-lama's best.ckpt: ~170,000);
* ``MAX_WORK`` (2**23) element operations beyond reading opcodes: hashing keys (a tuple costs
  its expanded size: hashes are not cached), copying containers, setting attributes;
* ``MAX_COLLISIONS`` (32) distinct constant keys sharing one hash, ``MAX_OPAQUE_KEYS`` (1024)
  keys whose hash is predictable but not computed here (numpy scalars, ``torch.Size``);
* ``MAX_MADE_BYTES`` (64 KiB) that calls may allocate from a number (``bytes(n)``,
  ``bytearray(n)``, an empty numpy array's shape);
* ``COPY_FACTOR`` x the file's size + ``COPY_FLOOR`` (4 x + 16 MiB) that calls may copy from the
  file's own values (a memoised text encoded, a tuple unpacked, a list copied, again and again);
* storages: the bytes declared over distinct keys are those the file holds (zip: each
  ``data/<key>`` member is at least as long as declared; legacy and tar: every block is there,
  of the declared size), and a tensor view at most ``MAX_VIEW_BYTES_OVER_FILE`` (1 MiB) larger
  than the file;
* every call of an allowed global has a policy (:data:`_POLICIES`); the rest are refused: text
  codecs only in :data:`SAFE_ENCODINGS` (``_codecs.encode`` only latin1), numpy arrays only
  rebuilt as numpy pickles them and never of Python objects, ``numpy.ndarray`` and
  ``torch.Tensor`` never called, iterables only containers the pickle built itself;
* zip: members stored (not compressed), each at most the file's size, no duplicates, the same
  records to Python's ``zipfile`` as to torch's reader; tar: the three members torch extracts
  are plain files (a FIFO would hang it, a link would make it read another file);
* a text opcode's line at most ``MAX_LINE`` (1 MiB); a frame at most what remains, and a
  record ending where its frame ends (else the next legacy record would start elsewhere).

Unknown globals (OmegaConf, argparse...) stay allowed, as inert placeholders; their arguments
are bounded like everything else. What runs code is decided by the caller's ``resolve`` (the
allowlist in :mod:`app.weights.official`), which raises its own refusal.

So a file that passes costs torch at most: its tensors (the file's size), the copies above,
64 KiB, and one small object per opcode (~70 bytes: 70 MB at ``MAX_OPS``). The scan itself
costs at most ~160 bytes per opcode (160 MB at ``MAX_OPS``) and reads only the pickles (zip
records whole, as torch does; legacy files through ``mmap``, skipping the storage blocks).
Measured on the shared 2-core development machine with ``python -m tests.test_checkpoint_limits``
(figures vary 2x with the load): a Lightning checkpoint shaped like big-lama's
``best.ckpt`` (850 MB, 4,700 tensors: generator, discriminator, Adam moments) scans in
0.5-0.7 s (164,000 opcodes zip, 180,000 legacy: 3-4 us each) with 14-16 MB of peak memory,
while ``load_pickle`` takes 2.5-6 s in all; the worst files the bounds admit (2**20 opcodes of
lists, or of ints) scan in 2-3.7 s with at most 160 MB, where torch's reader takes 0.6-3.5 s
and 68 MB.
"""

from __future__ import annotations

import contextlib
import gc
import io
import math
import mmap
import pickletools
import re
import struct
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np
import torch.serialization as torch_serialization

MAX_DEPTH = 100
MAX_OPS = 1 << 20
MAX_WORK = 1 << 23
MAX_COLLISIONS = 32
MAX_OPAQUE_KEYS = 1024
MAX_MADE_BYTES = 1 << 16
COPY_FACTOR, COPY_FLOOR = 4, 1 << 24  # bytes calls may copy from the file's values: 4 x its size + 16 MiB
MAX_VIEW_BYTES_OVER_FILE = 1 << 20
MAX_LINE = 1 << 20
MAX_NDIM = 64
MAX_MODULE_IDS = 16  # legacy ('module', ...) persistent ids: each makes torch parse source code
MAX_PLACEHOLDERS = 1024  # distinct unknown globals: the restricted reader makes a class for each
MAX_ZIP_DIRECTORY = 1 << 22  # bytes of zip directory: Python keeps ~350 bytes per entry (46 on disk)
MAX_TAR_MEMBERS = 64  # torch's tar format has three
#: Codecs that are linear and that pickles use; names exactly as Python's pickle writes them.
SAFE_ENCODINGS = frozenset({"latin1", "latin-1", "iso-8859-1", "utf-8", "utf8", "ascii"})
LATIN1 = frozenset({"latin1", "latin-1", "iso-8859-1"})
SAFE_ERRORS = frozenset({"strict", "ignore", "replace", "surrogatepass", "surrogateescape"})
_CONST_LEN = 1024  # strings/bytes kept as constants up to this length
_CONST_NODES = 128  # tuples kept as constants up to this expanded size
_SATURATE = 1 << 62
_DTYPE = re.compile(r"[<>|=]?[a-zA-Z?]\d{0,5}(\[\w{1,8}\])?")
_INT64 = struct.Struct("<q")
_TEXT_LITERALS = frozenset({"STRING", "BINSTRING", "SHORT_BINSTRING"})  # Python 2 str, read as utf-8 text


class Refusal(Exception):
    """Reading the file would run code (``runs_code``) or go past a bound; ``clause`` says what, after the name."""

    def __init__(self, clause: str, runs_code: bool = False) -> None:
        super().__init__(clause)
        self.clause, self.runs_code = clause, runs_code


class Unreadable(Exception):
    """Not a file torch would read (truncated, malformed, inconsistent); torch would fail too."""


#: resolve(module, name): the canonical (module, name) of an allowed global, None for an inert
#: placeholder; raises for a global that runs code.
Resolve = Callable[[str, str], "tuple[str, str] | None"]

_NO = object()  # "value not known"

# hash classes of a value used as a key
CONST, OPAQUE, RANDOM, IDENT, UNHASHABLE = "const", "opaque", "random", "ident", "unhashable"


class V:
    """What the scan knows of one value the pickle builds (never the value itself, unless a small constant)."""

    __slots__ = ("kind", "depth", "nodes", "value", "items", "hash", "info")

    def __init__(self, kind: str, depth: int = 1, nodes: int = 1, value: Any = _NO, items: list | None = None,
                 hashing: str = IDENT, info: Any = None) -> None:
        self.kind, self.depth, self.nodes, self.value = kind, depth, nodes, value
        self.items, self.hash, self.info = items, hashing, info

    @property
    def size(self) -> int:
        """Elements of a container, characters of a string (what copying or iterating it costs)."""
        if self.items is not None:
            return len(self.items)
        return self.info if isinstance(self.info, int) else 0

    def describe(self) -> str:
        """The kind in words, for messages."""
        return _KIND_NAMES.get(self.kind, self.kind)


_KIND_NAMES = {"str": "string", "ndarray": "numpy array", "dtype": "numpy dtype", "object": "Python object",
               "global": "class or function", "number": "number"}


def shown(text: str, limit: int = 80) -> str:
    """A name the file chose, cut for a message (it can be a megabyte long)."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _literal(value: Any) -> V:
    """A value written in the pickle itself."""
    if isinstance(value, (str, bytes)):
        kind = "str" if isinstance(value, str) else "bytes"
        small = len(value) <= _CONST_LEN
        return V(kind, value=value if small else _NO, hashing=CONST if small else RANDOM, info=len(value))
    if isinstance(value, bytearray):
        return V("bytearray", hashing=UNHASHABLE, info=len(value))
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4096:
        return V("number", hashing=OPAQUE)
    return V("number", value=value, hashing=CONST)


class _Budget:
    """What one file may still cost; shared by all its records."""

    def __init__(self, file_size: int) -> None:
        self.file_size = file_size
        self.ops = self.work = self.made = self.copied = self.opaque_keys = self.module_ids = 0
        self.copy_limit = COPY_FACTOR * file_size + COPY_FLOOR
        self.placeholders: set[tuple[str, str]] = set()
        self.first_of_hash: dict[int, Any] = {}
        self.collisions: dict[int, list] = {}

    def spend(self, units: int) -> None:
        self.work += units
        if self.work > MAX_WORK:
            raise Refusal(f"makes its reader hash or copy more than {MAX_WORK:,} elements (nested or repeated keys)")

    def copy(self, nbytes: int, what: str) -> None:
        """Memory a call fills from values the file holds; a memoised value can be copied again and again."""
        self.copied += nbytes
        if self.copied > self.copy_limit:
            raise Refusal(f"makes {what} and other calls copy more than {self.copy_limit:,} bytes in all "
                          f"({COPY_FACTOR} times the file's size + {COPY_FLOOR >> 20} MiB)")

    def make(self, nbytes: int, what: str) -> None:
        self.made += nbytes
        if self.made > MAX_MADE_BYTES:
            raise Refusal(f"asks {what} for {nbytes:,} bytes (at most {MAX_MADE_BYTES:,} in all)")

    def key(self, key: V) -> None:
        """``key`` is hashed into a dict or set: charge its expanded size, count predictable collisions."""
        if key.hash == UNHASHABLE:
            return  # the reader raises TypeError
        self.spend(2 * key.nodes)  # hash, then one comparison with an equal-hash key
        if key.hash == OPAQUE:
            self.opaque_keys += 1
            if self.opaque_keys > MAX_OPAQUE_KEYS:
                raise Refusal(f"has more than {MAX_OPAQUE_KEYS:,} keys whose hash it can choose (numpy scalars...)")
        elif key.hash == CONST:
            self._count_collision(key.value)

    def _count_collision(self, value: Any) -> None:
        h = hash(value)
        first = self.first_of_hash.setdefault(h, value)
        if first is value or first == value:
            return
        others = self.collisions.setdefault(h, [])
        if not any(o == value for o in others):
            others.append(value)
            if len(others) >= MAX_COLLISIONS:
                raise Refusal(f"has more than {MAX_COLLISIONS} distinct keys with the same hash (a collision attack)")


# --------------------------------------------------------------------------- reading bytes


class _Stream:
    """At most ``limit`` bytes of ``raw``; never asks ``raw`` for more than remain (genops trusts declared lengths)."""

    def __init__(self, raw: BinaryIO, limit: int) -> None:
        self.raw, self.left, self.pos = raw, limit, 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(self.left if n is None or n < 0 else min(n, self.left))
        self.left -= len(data)
        self.pos += len(data)
        return data

    def readline(self) -> bytes:
        line = self.raw.readline(min(self.left, MAX_LINE))
        self.left -= len(line)
        self.pos += len(line)
        return line

    def tell(self) -> int:
        return self.pos

    def int64(self) -> int:
        data = self.read(8)
        if len(data) != 8:
            raise Unreadable("ends inside a storage block")
        return _INT64.unpack(data)[0]

    def skip(self, n: int) -> None:
        if n < 0 or n > self.left:
            raise Unreadable(f"declares a block of {n:,} bytes where {self.left:,} remain")
        self.raw.seek(n, io.SEEK_CUR)
        self.left -= n
        self.pos += n


class _Buffer(io.BytesIO):
    """A record read whole (zip): ``BytesIO`` never over-allocates; ``left`` for frame checks."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.size = len(data)

    @property
    def left(self) -> int:
        return self.size - self.tell()


class _Mapped(_Stream):
    """A whole file through ``mmap``: genops reads with mmap's own (C) ``read``, which never over-allocates.

    Only ``readline`` is ours, to cap a text opcode's line; the file is never copied whole.
    """

    def __init__(self, mapped: mmap.mmap) -> None:
        self.mapped = mapped
        self.read, self.tell = mapped.read, mapped.tell  # type: ignore[method-assign]

    @property
    def left(self) -> int:  # type: ignore[override]
        return len(self.mapped) - self.mapped.tell()

    def readline(self) -> bytes:
        at = self.mapped.tell()
        end = self.mapped.find(b"\n", at, at + MAX_LINE)
        return self.mapped.read((end + 1 if end >= 0 else min(len(self.mapped), at + MAX_LINE)) - at)

    def skip(self, n: int) -> None:
        if n < 0 or n > self.left:
            raise Unreadable(f"declares a block of {n:,} bytes where {self.left:,} remain")
        self.mapped.seek(n, io.SEEK_CUR)


# --------------------------------------------------------------------------- the machine


class _Machine:
    """Runs one pickle record abstractly: pickle's stack, marks and memo, with :class:`V` for values."""

    def __init__(self, budget: _Budget, resolve: Resolve, persistent: Callable[[V], V]) -> None:
        self.budget, self.resolve, self.persistent = budget, resolve, persistent
        self.frame_end: int | None = None
        self.stack: list[V] = []
        self.metastack: list[list[V]] = []
        self.memo: dict[int, V] = {}

    def run(self, stream: _Stream | _Buffer) -> V:
        """The record's value, once its STOP is read; ``stream`` is then right after it."""
        budget, dispatch, self.stream = self.budget, _DISPATCH, stream
        try:
            for opcode, arg, _ in pickletools.genops(stream):  # stops after STOP, raises if none
                budget.ops += 1
                if budget.ops > MAX_OPS:
                    raise Refusal(f"has more than {MAX_OPS:,} pickle opcodes")
                dispatch[opcode](self, arg)
        except (ValueError, EOFError, struct.error, OverflowError, MemoryError) as exc:
            raise Unreadable(f"bad pickle data: {str(exc)[:200]}") from None
        if self.frame_end is not None and stream.tell() < self.frame_end:  # the next record would start elsewhere
            raise Unreadable("ends a pickle record inside a frame, where torch's readers would part ways")
        return self.pop()

    # stack
    def push(self, value: V) -> None:
        if value.depth > MAX_DEPTH:
            raise Refusal(f"nests values more than {MAX_DEPTH} levels deep")
        self.stack.append(value)

    def pop(self) -> V:
        if not self.stack:
            raise Unreadable("pops from an empty pickle stack")
        return self.stack.pop()

    def top(self) -> V:
        if not self.stack:
            raise Unreadable("uses an empty pickle stack")
        return self.stack[-1]

    def pop_mark(self) -> list[V]:
        if not self.metastack:
            raise Unreadable("has no MARK where one is needed")
        items, self.stack = self.stack, self.metastack.pop()
        return items

    # opcodes
    def literal(self, arg: Any) -> None:
        self.push(_literal(arg))

    def text2(self, arg: str) -> None:
        """Python 2 ``str``: genops gives latin-1 text; torch's readers decode it as utf-8."""
        raw = arg.encode("latin-1")
        try:
            self.push(_literal(raw.decode("utf-8")))
        except UnicodeDecodeError:
            raise Unreadable("holds a Python 2 string that is not utf-8") from None

    def mark(self, _: Any) -> None:
        self.metastack.append(self.stack)
        self.stack = []

    def pop_op(self, _: Any) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self.pop_mark()

    def pop_mark_op(self, _: Any) -> None:
        self.pop_mark()

    def dup(self, _: Any) -> None:
        self.push(self.top())

    def get(self, index: int) -> None:
        if index not in self.memo:
            raise Unreadable(f"reads memo entry {index}, never written")
        self.push(self.memo[index])

    def put(self, index: int) -> None:
        self.memo[index] = self.top()

    def memoize(self, _: Any) -> None:
        self.memo[len(self.memo)] = self.top()

    def tuple_n(self, n: int) -> None:
        items = self.stack[-n:] if n else []
        if len(items) != n:
            raise Unreadable("builds a tuple from an empty stack")
        del self.stack[len(self.stack) - n:]
        self.push(_tuple(items))

    def tuple_mark(self, _: Any) -> None:
        self.push(_tuple(self.pop_mark()))

    def list_mark(self, _: Any) -> None:
        items = self.pop_mark()
        self.push(_container("list", items))

    def dict_mark(self, _: Any) -> None:
        items = self.pop_mark()
        target = V("dict", items=[], hashing=UNHASHABLE)
        self._setitems(target, items)
        self.push(target)

    def frozenset_mark(self, _: Any) -> None:
        items = self.pop_mark()
        for item in items:
            self.budget.key(item)
        self.push(_container("frozenset", items, hashing=OPAQUE))

    def append(self, _: Any) -> None:
        value = self.pop()
        self._add(self.top(), [value], "appends to")

    def appends(self, _: Any) -> None:
        items = self.pop_mark()
        self._add(self.top(), items, "appends to")

    def setitem(self, _: Any) -> None:
        value, key = self.pop(), self.pop()
        self._setitems(self.top(), [key, value])

    def setitems(self, _: Any) -> None:
        items = self.pop_mark()
        self._setitems(self.top(), items)

    def additems(self, _: Any) -> None:
        items = self.pop_mark()
        target = self.top()
        if target.kind != "set":
            raise Refusal(f"adds set items to a {target.describe()}")
        for item in items:
            self.budget.key(item)
        self._grow(target, items)

    def global_op(self, arg: str) -> None:
        module, space, name = arg.partition(" ")
        if not space or " " in name:
            raise Unreadable(f"names a global with a space in it ({arg[:80]!r})")
        self.push(self._global(module, name))

    def stack_global(self, _: Any) -> None:
        name, module = self.pop(), self.pop()
        if not (isinstance(module.value, str) and isinstance(name.value, str)):
            raise Unreadable("names a global with something other than two strings")
        self.push(self._global(module.value, name.value))

    def reduce(self, _: Any) -> None:
        args = self.pop()
        func = self.pop()
        self.push(self.call(func, _arguments(args), None))

    def newobj(self, _: Any) -> None:
        args = self.pop()
        cls = self.pop()
        self.push(self.call(cls, _arguments(args), None))

    def newobj_ex(self, _: Any) -> None:
        kwargs, args = self.pop(), self.pop()
        cls = self.pop()
        self.push(self.call(cls, _arguments(args), kwargs))

    def inst(self, arg: str) -> None:
        module, space, name = arg.partition(" ")
        if not space or " " in name:
            raise Unreadable(f"names a global with a space in it ({arg[:80]!r})")
        args = self.pop_mark()
        self.push(self.call(self._global(module, name), args, None))

    def obj(self, _: Any) -> None:
        args = self.pop_mark()
        if not args:
            raise Unreadable("has an OBJ without a class")
        self.push(self.call(args[0], args[1:], None))

    def build(self, _: Any) -> None:
        state = self.pop()
        _build(self, self.top(), state)

    def persid(self, arg: str) -> None:
        self.push(self.persistent(_literal(arg)))

    def binpersid(self, _: Any) -> None:
        self.push(self.persistent(self.pop()))

    def nothing(self, _: Any) -> None:
        pass

    def frame(self, size: int) -> None:
        """Protocol 4's frames, as the pure-Python reader reads them (torch's weights-only reader has none).

        It reads a whole frame at once (so the frame must be there), refuses a frame begun inside
        another, and after a STOP skips what is left of the frame (see :meth:`run`).
        """
        here = self.stream.tell()
        if self.frame_end is not None and here < self.frame_end:
            raise Unreadable("starts a pickle frame inside another")
        if size > self.stream.left:
            raise Unreadable(f"declares a frame of {size:,} bytes where {self.stream.left:,} remain")
        self.frame_end = here + size

    def refuse_op(self, _: Any) -> None:
        raise Unreadable("uses out-of-band buffers or the copyreg extension registry, which torch does not give")

    # helpers
    def _global(self, module: str, name: str) -> V:
        """A global as torch's readers will find it (storage types first, as torch's own wrapper does)."""
        if "Storage" in name:
            try:
                dtype = torch_serialization.StorageType(name).dtype
            except KeyError:
                pass
            else:
                return V("global", info=("torch", name), value=("storage_type", dtype.itemsize))
        module = {"torch.tensor": "torch._tensor"}.get(module, module)
        canonical = self.resolve(module, name)  # raises for a global that runs code
        if canonical is None:
            placeholders = self.budget.placeholders
            placeholders.add((module, name))
            if len(placeholders) > MAX_PLACEHOLDERS:
                raise Refusal(f"names more than {MAX_PLACEHOLDERS:,} different unknown classes or functions")
            return V("global", info=(module, name), value="placeholder")
        return V("global", info=canonical, value="allowed")

    def _grow(self, target: V, items: list[V]) -> None:
        """``items`` go into ``target`` (a mutable container or a placeholder instance)."""
        self.budget.spend(len(items))
        if target.items is not None:
            target.items.extend(items)
        deepest = max((item.depth for item in items), default=0)
        if deepest + 1 > target.depth:
            target.depth = deepest + 1
            if target.depth > MAX_DEPTH:
                raise Refusal(f"nests values more than {MAX_DEPTH} levels deep")

    def _add(self, target: V, items: list[V], verb: str) -> None:
        if target.kind not in ("list", "object"):
            raise Refusal(f"{verb} a {target.describe()}")
        self._grow(target, items)

    def _setitems(self, target: V, items: list[V]) -> None:
        if target.kind not in ("dict", "object"):
            raise Refusal(f"sets items of a {target.describe()}")
        if len(items) % 2:
            raise Unreadable("sets a key without a value")
        for key in items[::2]:
            self.budget.key(key)
        if target.kind == "dict":
            target.items.extend(items[::2])
            self.budget.spend(len(items) // 2)
            deepest = max((item.depth for item in items), default=0)
            target.depth = max(target.depth, deepest + 1)
            if target.depth > MAX_DEPTH:
                raise Refusal(f"nests values more than {MAX_DEPTH} levels deep")
        else:
            self._grow(target, items)

    def call(self, func: V, args: list[V], kwargs: V | None) -> V:
        """What calling ``func`` (REDUCE, NEWOBJ, INST, OBJ) costs, by the policy of the global it is."""
        if func.kind != "global":
            raise Unreadable(f"calls a {func.describe()}, which is not callable")
        depth = 1 + max((a.depth for a in (*args, kwargs) if a is not None), default=0)
        name = f"{func.info[0]}.{func.info[1]}"
        self.budget.spend(len(args))
        self.budget.copy(8 * len(args), name)  # ``func(*args)`` unpacks them into a new tuple, which a stand-in keeps
        if func.value == "placeholder":  # an inert stand-in keeps its arguments
            return V("object", depth=depth)
        if func.value != "allowed" or func.info not in _POLICIES:
            raise Refusal(f"calls {name}, which no checkpoint does")
        if kwargs is not None and (kwargs.kind != "dict" or kwargs.items):
            raise Refusal(f"calls {name} with keyword arguments")
        result = _POLICIES[func.info](self, args, name)
        result.depth = max(result.depth, depth)
        if result.depth > MAX_DEPTH:
            raise Refusal(f"nests values more than {MAX_DEPTH} levels deep")
        return result


def _empty(kind: str, hashing: str) -> Callable[[_Machine, Any], None]:
    if kind == "tuple":
        return lambda machine, _: machine.stack.append(_tuple([]))
    return lambda machine, _: machine.stack.append(V(kind, items=[], hashing=hashing))


def _container(kind: str, items: list[V], hashing: str = UNHASHABLE) -> V:
    return V(kind, depth=1 + max((i.depth for i in items), default=0), items=list(items), hashing=hashing)


def _tuple(items: list[V]) -> V:
    """A tuple: hashed in full each time (no cached hash), so its expanded size counts."""
    nodes, depth, hashing = 1, 0, CONST
    for item in items:
        nodes += item.nodes
        depth = max(depth, item.depth)
        if _HASH_RANK[item.hash] > _HASH_RANK[hashing]:
            hashing = item.hash
    nodes = min(nodes, _SATURATE)
    value = _NO
    if hashing == CONST:
        if nodes <= _CONST_NODES:
            value = tuple(item.value for item in items)
        else:
            hashing = OPAQUE
    return V("tuple", depth=depth + 1, nodes=nodes, value=value, items=list(items), hashing=hashing)


#: A tuple hashes like its least predictable element.
_HASH_RANK = {CONST: 0, OPAQUE: 1, RANDOM: 2, IDENT: 3, UNHASHABLE: 4}


def _arguments(args: V) -> list[V]:
    """``func(*args)``: pickle accepts any iterable; only containers the pickle built are checked."""
    if args.kind in ("tuple", "list") and args.items is not None:
        return args.items
    raise Refusal(f"passes a {args.describe()} as the arguments of a call")


# --------------------------------------------------------------------------- policies of allowed globals


def _const_int(value: V) -> int | None:
    return value.value if isinstance(value.value, int) and not isinstance(value.value, bool) else None


def _encoding(args: list[V], name: str, codecs: frozenset[str] = SAFE_ENCODINGS) -> None:
    """Text codecs must be named by a constant among the linear ones (punycode is quadratic)."""
    encoding = args[0].value if args else "utf-8"
    if not isinstance(encoding, str) or encoding not in codecs:
        named = repr(shown(encoding, 40)) if isinstance(encoding, str) else "a computed"
        raise Refusal(f"asks {name} for the {named} codec (only {', '.join(sorted(codecs))} are read)")
    if len(args) > 1 and args[1].value not in SAFE_ERRORS:
        raise Refusal(f"asks {name} for an unusual codec error handler")
    if len(args) > 2:
        raise Unreadable(f"calls {name} with too many arguments")


def _iterable(machine: _Machine, arg: V, name: str) -> list[V]:
    """Elements of what ``list()``, ``set()``... would iterate: only containers the pickle built itself.

    Iterating anything else (a tensor, an array, a placeholder) costs what its size says, not its bytes.
    """
    if arg.items is not None and arg.kind in ("tuple", "list", "set", "frozenset", "dict"):
        machine.budget.spend(len(arg.items))
        return arg.items
    raise Refusal(f"calls {name} on a {arg.describe()}")


def _bytes(kind: str) -> Callable[[_Machine, list[V], str], V]:
    def policy(machine: _Machine, args: list[V], name: str) -> V:
        hashing = RANDOM if kind == "bytes" else UNHASHABLE
        if not args:
            return V(kind, hashing=hashing, info=0)
        first = args[0]
        if first.kind == "str":
            _encoding(args[1:], name)
            machine.budget.copy(4 * first.size, name)
            return V(kind, hashing=hashing, info=4 * first.size)
        if len(args) > 1:
            raise Unreadable(f"calls {name} with an encoding for a {first.describe()}")
        if first.kind == "number":
            count = _const_int(first)
            if count is None:
                raise Refusal(f"asks {name} for a computed number of bytes")
            machine.budget.make(max(count, 0), name)
            return V(kind, hashing=hashing, info=count)
        if first.kind in ("bytes", "bytearray"):  # a copy
            machine.budget.copy(first.size, name)
            return V(kind, hashing=hashing, info=first.size)
        count = len(_iterable(machine, first, name))
        machine.budget.copy(count, name)
        return V(kind, hashing=hashing, info=count)
    return policy


def _str(machine: _Machine, args: list[V], name: str) -> V:
    if not args:
        return _literal("")
    first = args[0]
    if len(args) > 1:
        if first.kind not in ("bytes", "bytearray"):
            raise Unreadable(f"calls {name} with an encoding for a {first.describe()}")
        _encoding(args[1:], name)
        machine.budget.copy(4 * first.size, name)
        return V("str", hashing=RANDOM, info=first.size)
    if first.kind in ("str", "number"):
        machine.budget.copy(first.size, name)
        return V("str", hashing=RANDOM, info=first.size)
    raise Refusal(f"calls {name} on a {first.describe()}")  # repr of a shared structure grows exponentially


def _number(convert: type) -> Callable[[_Machine, list[V], str], V]:
    def policy(machine: _Machine, args: list[V], name: str) -> V:
        if len(args) > 2 or any(a.kind not in ("number", "str", "bytes") for a in args):
            raise Refusal(f"calls {name} on something other than numbers and text")
        if all(a.value is not _NO for a in args):
            try:
                return _literal(convert(*(a.value for a in args)))
            except (ValueError, TypeError, OverflowError):
                raise Unreadable(f"calls {name} with arguments it refuses") from None
        return V("number", hashing=OPAQUE)
    return policy


def _slice(machine: _Machine, args: list[V], name: str) -> V:
    if len(args) > 3:
        raise Unreadable(f"calls {name} with too many arguments")
    return V("slice", hashing=OPAQUE)


def _copy(kind: str, hashing: str) -> Callable[[_Machine, list[V], str], V]:
    """``tuple``, ``list``, ``set``, ``frozenset``, ``dict``, ``OrderedDict``, ``torch.Size`` of an iterable."""
    def policy(machine: _Machine, args: list[V], name: str) -> V:
        if len(args) > 1:
            raise Unreadable(f"calls {name} with more than one argument")
        items = _iterable(machine, args[0], name) if args else []
        machine.budget.copy(32 * len(items), name)  # a pointer, or a hash-table entry, per element
        if kind in ("set", "frozenset"):
            for item in items:
                machine.budget.key(item)
        if kind == "dict":
            keys = items if args and args[0].kind == "dict" else [_pair_key(machine, item, name) for item in items]
            return _container("dict", keys)
        if kind == "tuple":
            result = _tuple(items)
            if hashing != CONST:
                result.hash = UNHASHABLE if result.hash == UNHASHABLE else OPAQUE
            return result
        return _container(kind, items, hashing=hashing)
    return policy


def _pair_key(machine: _Machine, pair: V, name: str) -> V:
    if pair.items is None or len(pair.items) != 2:
        raise Refusal(f"calls {name} on something other than key-value pairs")
    machine.budget.key(pair.items[0])
    return pair.items[0]


def _defaultdict(machine: _Machine, args: list[V], name: str) -> V:
    if len(args) > 2:
        raise Unreadable(f"calls {name} with too many arguments")
    if args and not (args[0].kind == "global" or args[0].value is None):
        raise Refusal(f"gives {name} a {args[0].describe()} as its factory")
    return _copy("dict", UNHASHABLE)(machine, args[1:], name)


def _latin1(machine: _Machine, args: list[V], name: str) -> V:
    """``_codecs.encode(text, 'latin1')``: how protocol 2 writes bytes; nothing else."""
    if not args or args[0].kind != "str":
        raise Refusal(f"calls {name} on a {args[0].describe() if args else 'nothing'}")
    _encoding(args[1:], name, LATIN1)
    machine.budget.copy(args[0].size, name)
    text = args[0].value
    if isinstance(text, str):
        try:
            return _literal(text.encode("latin-1"))
        except UnicodeEncodeError:
            raise Unreadable(f"calls {name} with text latin1 cannot encode") from None
    return V("bytes", hashing=RANDOM, info=args[0].size)


def _device(machine: _Machine, args: list[V], name: str) -> V:
    if len(args) > 2 or any(a.value is _NO for a in args):
        raise Refusal(f"calls {name} with something other than a device name and index")
    return V("object", hashing=OPAQUE)


def _np_dtype(machine: _Machine, args: list[V], name: str) -> V:
    """``numpy.dtype('f8', False, True)``: a constant type string, as numpy pickles it."""
    spec = args[0].value if args else None
    if isinstance(spec, bytes):
        spec = spec.decode("latin-1")
    if not isinstance(spec, str) or not _DTYPE.fullmatch(spec) or any(a.value is _NO for a in args[1:3]):
        raise Refusal(f"calls {name} with something other than a type string")
    try:
        dtype = np.dtype(spec)
    except TypeError:
        raise Unreadable(f"calls {name} with {spec!r}, which numpy refuses") from None
    return V("dtype", hashing=OPAQUE, info={"itemsize": dtype.itemsize, "object": dtype.hasobject})


def _np_scalar(machine: _Machine, args: list[V], name: str) -> V:
    if not args or args[0].kind != "dtype" or len(args) > 2:
        raise Refusal(f"calls {name} without a numpy dtype")
    if args[0].info["object"]:
        return args[1] if len(args) > 1 else V("object")  # numpy returns the object itself
    if len(args) > 1 and args[1].kind not in ("bytes", "str"):
        raise Refusal(f"calls {name} with a {args[1].describe()} as its data")
    machine.budget.copy(args[0].info["itemsize"], name)
    return V("number", hashing=OPAQUE)


def _np_reconstruct(machine: _Machine, args: list[V], name: str) -> V:
    """``_reconstruct(ndarray, (0,), b'b')``: an empty array numpy then fills by BUILD (see :func:`_build_array`)."""
    if len(args) != 3 or args[0].kind != "global" or args[0].info != ("numpy", "ndarray"):
        raise Refusal(f"calls {name} with something other than numpy.ndarray")
    shape = _shape(args[1], name)
    itemsize = _np_dtype(machine, [args[2]], name).info["itemsize"]
    machine.budget.make(math.prod(shape) * max(itemsize, 1), name)
    return V("ndarray", hashing=UNHASHABLE)


def _shape(value: V, name: str) -> tuple[int, ...]:
    shape = value.value
    if not (isinstance(shape, tuple) and len(shape) <= MAX_NDIM
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise Refusal(f"gives {name} a shape that is not a short tuple of sizes")
    return shape


_TENSOR_REBUILDS = ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3")
_PARAMETER_REBUILDS = ("_rebuild_parameter", "_rebuild_parameter_with_state")


def _rebuild_tensor(machine: _Machine, args: list[V], name: str) -> V:
    """``_rebuild_tensor*(storage, offset, size, stride, ...)``: a view of a storage, bounded by the file."""
    if len(args) < 4 or args[0].kind != "storage":
        raise Unreadable(f"calls {name} without a storage")
    itemsize = args[0].info[0]
    _view(machine.budget, itemsize, _shape(args[2], name), len(_shape(args[3], name)), name)
    return V("tensor")


def _view(budget: _Budget, itemsize: int, shape: tuple[int, ...], strides: int, name: str) -> None:
    """A tensor may repeat its storage (stride 0), but not into more memory than the file could fill."""
    if strides != len(shape):
        raise Unreadable(f"calls {name} with {len(shape)} sizes and {strides} strides")
    nbytes = math.prod(shape) * itemsize
    if nbytes > budget.file_size + MAX_VIEW_BYTES_OVER_FILE:
        raise Refusal(f"makes a tensor view of {nbytes:,} bytes in a file of {budget.file_size:,}")


def _rebuild_parameter(machine: _Machine, args: list[V], name: str) -> V:
    if not args or args[0].kind != "tensor":
        raise Unreadable(f"calls {name} without a tensor")
    if len(args) > 3:
        _object_state(machine, args[3], name)
    return V("tensor")


def _object_state(machine: _Machine, state: V, name: str) -> None:
    """A state dict set attribute by attribute: one entry per key, in a new object each time."""
    machine.budget.spend(1 + state.size)
    machine.budget.copy(32 * state.size, name)


def _rebuild_from_type(machine: _Machine, args: list[V], name: str) -> V:
    """``_rebuild_from_type_v2(func, type, args, state)`` calls ``func(*args)``: only a tensor rebuild, checked."""
    if len(args) != 4:
        raise Unreadable(f"calls {name} with {len(args)} arguments")
    func, new_type, inner = args[0], args[1], args[2]
    qual = shown(f"{func.info[0]}.{func.info[1]}") if func.kind == "global" else f"a {func.describe()}"
    if func.kind != "global" or func.value != "allowed" or func.info[0] != "torch._utils" \
            or func.info[1] not in (*_TENSOR_REBUILDS, *_PARAMETER_REBUILDS):
        raise Refusal(f"rebuilds a tensor with {qual}", runs_code=True)
    if new_type.kind != "global" or new_type.info not in (("torch", "Tensor"), ("torch.nn.parameter", "Parameter")):
        kind = shown(f"{new_type.info[0]}.{new_type.info[1]}") if new_type.kind == "global" \
            else f"a {new_type.describe()}"
        raise Refusal(f"rebuilds a tensor as {kind}", runs_code=True)
    _object_state(machine, args[3], name)
    return _POLICIES[func.info](machine, _arguments(inner), qual)


_POLICIES: dict[tuple[str, str], Callable[[_Machine, list[V], str], V]] = {
    ("builtins", "bytes"): _bytes("bytes"),
    ("builtins", "bytearray"): _bytes("bytearray"),
    ("builtins", "str"): _str,
    **{("builtins", t.__name__): _number(t) for t in (int, float, complex, bool)},
    ("builtins", "slice"): _slice,
    ("builtins", "tuple"): _copy("tuple", CONST),
    ("builtins", "list"): _copy("list", UNHASHABLE),
    ("builtins", "set"): _copy("set", UNHASHABLE),
    ("builtins", "frozenset"): _copy("frozenset", OPAQUE),
    ("builtins", "dict"): _copy("dict", UNHASHABLE),
    ("collections", "OrderedDict"): _copy("dict", UNHASHABLE),
    ("collections", "defaultdict"): _defaultdict,
    ("torch", "Size"): _copy("tuple", OPAQUE),
    ("torch", "device"): _device,
    ("_codecs", "encode"): _latin1,
    ("numpy", "dtype"): _np_dtype,
    **{(module, "scalar"): _np_scalar for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "_reconstruct"): _np_reconstruct for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{("torch._utils", name): _rebuild_tensor for name in _TENSOR_REBUILDS},
    **{("torch._utils", name): _rebuild_parameter for name in _PARAMETER_REBUILDS},
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
}


def _build(machine: _Machine, target: V, state: V) -> None:
    """BUILD (set an object's state): placeholders keep it; numpy arrays and dtypes are checked; nothing else."""
    if target.kind == "global":
        raise Refusal(f"sets attributes of {shown(f'{target.info[0]}.{target.info[1]}')}", runs_code=True)
    if target.kind == "ndarray":
        _build_array(machine, state)
    elif target.kind == "dtype":
        _build_dtype(target, state)
    elif target.kind == "dict":  # an OrderedDict's attributes
        _object_state(machine, state, "BUILD")
    elif target.kind != "object":  # a placeholder keeps the state as it is
        raise Refusal(f"sets the state of a {target.describe()}")
    machine.budget.spend(1)
    target.depth = max(target.depth, state.depth + 1)
    if target.depth > MAX_DEPTH:
        raise Refusal(f"nests values more than {MAX_DEPTH} levels deep")


def _build_array(machine: _Machine, state: V) -> None:
    """numpy's ``(version, shape, dtype, fortran, data)``: no objects, and no more bytes than the data holds."""
    items = state.items if state.kind == "tuple" else None
    if items is None or len(items) not in (4, 5):
        raise Refusal("sets the state of a numpy array with something numpy does not write")
    shape, dtype, data = items[-4], items[-3], items[-1]
    if dtype.kind != "dtype":
        raise Refusal("sets the state of a numpy array without a numpy dtype")
    if dtype.info["object"]:
        raise Refusal("holds a numpy array of Python objects")
    nbytes = math.prod(_shape(shape, "a numpy array")) * dtype.info["itemsize"]
    if data.kind not in ("bytes", "str", "bytearray") or nbytes > data.size:
        raise Refusal(f"declares a numpy array of {nbytes:,} bytes with {data.size:,} bytes of data")
    machine.budget.copy(nbytes, "numpy")


def _build_dtype(target: V, state: V) -> None:
    """numpy's dtype state: plain types only (a structured one can hide object fields), item size bounded."""
    items = state.items if state.kind == "tuple" else None
    if items is None or len(items) < 8 or any(i.value is not None for i in items[2:5]):
        raise Refusal("holds a numpy dtype with fields or sub-arrays")
    itemsize = _const_int(items[5])
    if itemsize is None or itemsize > MAX_MADE_BYTES:
        raise Refusal("holds a numpy dtype with an unusual item size")
    if itemsize > 0:
        target.info = {**target.info, "itemsize": itemsize}


_HANDLERS: dict[str, Callable[[_Machine, Any], None]] = {
    **dict.fromkeys(("INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "NONE", "NEWTRUE",
                     "NEWFALSE", "FLOAT", "BINFLOAT", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8",
                     "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"), _Machine.literal),
    **dict.fromkeys(_TEXT_LITERALS, _Machine.text2),
    "NONE": lambda m, _: m.push(_literal(None)),
    "NEWTRUE": lambda m, _: m.push(_literal(True)),
    "NEWFALSE": lambda m, _: m.push(_literal(False)),
    "MARK": _Machine.mark, "POP": _Machine.pop_op, "POP_MARK": _Machine.pop_mark_op, "DUP": _Machine.dup,
    **dict.fromkeys(("GET", "BINGET", "LONG_BINGET"), _Machine.get),
    **dict.fromkeys(("PUT", "BINPUT", "LONG_BINPUT"), _Machine.put),
    "MEMOIZE": _Machine.memoize,
    "EMPTY_TUPLE": _empty("tuple", CONST), "EMPTY_LIST": _empty("list", UNHASHABLE),
    "EMPTY_DICT": _empty("dict", UNHASHABLE), "EMPTY_SET": _empty("set", UNHASHABLE),
    "TUPLE": _Machine.tuple_mark,
    "TUPLE1": lambda m, _: m.tuple_n(1), "TUPLE2": lambda m, _: m.tuple_n(2), "TUPLE3": lambda m, _: m.tuple_n(3),
    "LIST": _Machine.list_mark, "DICT": _Machine.dict_mark, "FROZENSET": _Machine.frozenset_mark,
    "APPEND": _Machine.append, "APPENDS": _Machine.appends, "SETITEM": _Machine.setitem,
    "SETITEMS": _Machine.setitems, "ADDITEMS": _Machine.additems,
    "GLOBAL": _Machine.global_op, "STACK_GLOBAL": _Machine.stack_global, "REDUCE": _Machine.reduce,
    "NEWOBJ": _Machine.newobj, "NEWOBJ_EX": _Machine.newobj_ex, "INST": _Machine.inst, "OBJ": _Machine.obj,
    "BUILD": _Machine.build, "PERSID": _Machine.persid, "BINPERSID": _Machine.binpersid,
    "PROTO": _Machine.nothing, "FRAME": _Machine.frame, "STOP": _Machine.nothing,
    **dict.fromkeys(("NEXT_BUFFER", "READONLY_BUFFER", "EXT1", "EXT2", "EXT4"), _Machine.refuse_op),
}
#: By genops' opcode objects (identity), so the loop does one lookup per opcode.
_DISPATCH = {opcode: _HANDLERS[opcode.name] for opcode in pickletools.opcodes}


# --------------------------------------------------------------------------- storages (persistent ids)


def _storage_type(value: V) -> int:
    """Item size of a storage type named in a persistent id."""
    if value.kind != "global" or not isinstance(value.value, tuple):
        raise Unreadable(f"declares a storage of a {value.describe()}, not a storage type")
    return value.value[1]


def _key(value: V) -> str | int:
    key = value.value
    if not isinstance(key, (str, int)) or isinstance(key, bool):
        raise Unreadable("declares a storage whose key is not a name")
    return key


def _count(value: V, what: str) -> int:
    count = _const_int(value)
    if count is None or count < 0:
        raise Unreadable(f"declares {what} that is not a count")
    return count


class _Storages:
    """Storages a file declares, by key: what torch allocates before (legacy) or while (zip) reading them."""

    def __init__(self, budget: _Budget) -> None:
        self.budget = budget
        self.by_key: dict[Any, tuple[int, int]] = {}  # key -> (item size, elements)
        self.total = 0

    def declare(self, key: Any, itemsize: int, numel: int) -> None:
        if key in self.by_key:
            return  # torch reuses the first storage of a key
        self.by_key[key] = (itemsize, numel)
        self.total += itemsize * numel
        if self.total > self.budget.file_size:
            raise Refusal(f"declares {self.total:,} bytes of tensor storage in a file of {self.budget.file_size:,}")

    def module_id(self, value: V) -> V:
        """A legacy ``('module', type, file, source)`` id: torch parses source code for each one."""
        self.budget.module_ids += 1
        if self.budget.module_ids > MAX_MODULE_IDS:
            raise Refusal(f"declares more than {MAX_MODULE_IDS} saved modules")
        return value


def _pid_items(pid: V) -> list[V]:
    if pid.kind != "tuple" or not pid.items:
        raise Unreadable("has a persistent id that is not a tuple")
    kind = pid.items[0].value
    if isinstance(kind, bytes):
        kind = kind.decode("latin-1")
    if kind not in ("storage", "module"):
        raise Unreadable(f"has a persistent id of kind {str(kind)[:40]!r}")
    return pid.items


# --------------------------------------------------------------------------- the formats


class Cost(NamedTuple):
    """What reading a file that passed will cost, in the units of the bounds."""

    ops: int
    work: int
    copied: int


def scan_checkpoint(path: Path, resolve: Resolve) -> Cost:
    """Refuse ``path`` (:class:`Refusal`, :class:`Unreadable`) unless reading it stays within the module's bounds.

    The format is decided as ``torch.load`` decides it: zip by its first bytes, then the
    legacy tar format if ``tarfile`` opens it, else the legacy record sequence. Read-only.
    """
    budget = _Budget(path.stat().st_size)
    with open(path, "rb") as f, _collector_paused():
        if torch_serialization._is_zipfile(f):
            _scan_zip(f, budget, resolve)
        elif (tar := _open_tar(f)) is not None:
            with tar:
                _TarScan(tar, budget, resolve).run()
        elif budget.file_size == 0:
            raise Unreadable("an empty file")
        else:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                mapped.madvise(mmap.MADV_RANDOM)  # the storage blocks are skipped: no read-ahead into them
                _scan_legacy(_Mapped(mapped), budget, resolve)
    return Cost(budget.ops, budget.work, budget.copied)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The scan makes up to ``MAX_OPS`` small objects and no garbage cycles worth collecting meanwhile.

    Python's cyclic collector would walk them again and again (2/3 of the time of a worst-case
    scan); it is paused for the scan only, and left as found if someone else paused it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# zip ------------------------------------------------------------------------


def _scan_zip(f: BinaryIO, budget: _Budget, resolve: Resolve) -> None:
    """torch's zip format: every member stored and consistent; every ``*.pkl`` record scanned."""
    directory = zipfile._EndRecData(f)
    if directory is None:
        raise Unreadable("a zip archive without its directory")
    if directory[zipfile._ECD_SIZE] > MAX_ZIP_DIRECTORY:
        raise Refusal(f"has a zip directory of {directory[zipfile._ECD_SIZE]:,} bytes "
                      f"(at most {MAX_ZIP_DIRECTORY:,}: about 45,000 tensors)")
    try:
        bundle = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise Unreadable(f"a damaged zip archive: {exc}") from None
    with bundle:
        infos = _zip_members(f, bundle, budget)
        prefix = infos[0].filename.partition("/")[0]
        sizes = {info.filename: info.file_size for info in infos}
        storages = _Storages(budget)

        def persistent(pid: V) -> V:
            items = _pid_items(pid)
            if len(items) != 5 or items[0].value not in ("storage", b"storage"):
                raise Unreadable("has a storage id torch's zip reader does not read")
            itemsize, key, numel = _storage_type(items[1]), _key(items[2]), _count(items[4], "a storage size")
            held = sizes.get(f"{prefix}/data/{key}")
            if held is None or itemsize * numel > held:
                raise Refusal(f"declares storage {str(key)[:40]!r} of {itemsize * numel:,} bytes, but holds "
                              f"{held or 0:,} for it")
            storages.declare(key, itemsize, numel)
            return V("storage", info=(itemsize, numel))

        for info in infos:
            if info.filename.endswith(".pkl"):  # read whole, as torch does (stored, at most the file's size)
                _Machine(budget, resolve, persistent).run(_Buffer(bundle.read(info)))


def _zip_members(f: BinaryIO, bundle: zipfile.ZipFile, budget: _Budget) -> list[zipfile.ZipInfo]:
    """Members as torch's reader will see them, refused when they could unpack to more than the file."""
    infos = bundle.infolist()
    if not infos:
        raise Unreadable("an empty zip archive")
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise Refusal("has two zip members of the same name")
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise Refusal(f"has a compressed or encrypted zip member ({info.filename[:60]!r}); torch writes none")
        if info.file_size != info.compress_size or info.file_size > budget.file_size:
            raise Refusal(f"has a zip member ({info.filename[:60]!r}) declaring {info.file_size:,} bytes")
    if zipfile._EndRecData(f)[zipfile._ECD_OFFSET] != bundle.start_dir:
        raise Unreadable("has bytes before its zip directory that torch reads differently")
    prefix = names[0].partition("/")[0] + "/"
    ours = sorted(n.removeprefix(prefix) for n in names)
    f.seek(0)
    try:
        with torch_serialization._open_zipfile_reader(f) as reader:
            theirs = sorted(reader.get_all_records())
    except RuntimeError as exc:
        raise Unreadable(f"torch cannot open its zip directory: {str(exc)[:200]}") from None
    finally:
        f.seek(0)
    if ours != theirs:
        raise Unreadable("lists other zip members to torch than to Python")
    return infos


# legacy ---------------------------------------------------------------------


_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_PROTOCOL_VERSION = 1001


def _scan_legacy(stream: _Stream, budget: _Budget, resolve: Resolve) -> None:
    """The legacy format: magic number, protocol, sys_info, main record, storage keys, then storage blocks."""
    storages = _Storages(budget)

    def plain(pid: V) -> V:
        raise Unreadable("has a persistent id outside its main record")

    def persistent(pid: V) -> V:
        items = _pid_items(pid)
        if items[0].value in ("module", b"module"):
            return storages.module_id(items[1] if len(items) > 1 else V("object"))
        if len(items) != 6:
            raise Unreadable("has a storage id torch's legacy reader does not read")
        itemsize, root, numel = _storage_type(items[1]), _key(items[2]), _count(items[4], "a storage size")
        storages.declare(root, itemsize, numel)
        view = items[5]
        if view.value is None:
            return V("storage", info=(itemsize, numel))
        if view.kind != "tuple" or view.items is None or len(view.items) != 3:
            raise Unreadable("has a storage view that is not (key, offset, size)")
        return V("storage", info=(itemsize, min(numel, _count(view.items[2], "a view size"))))

    magic = _Machine(budget, resolve, plain).run(stream)
    if magic.value != _MAGIC_NUMBER:
        raise Unreadable("does not start with torch's magic number")
    if _Machine(budget, resolve, plain).run(stream).value != _PROTOCOL_VERSION:
        raise Unreadable("has an unknown legacy protocol version")
    _Machine(budget, resolve, plain).run(stream)  # sys_info
    _Machine(budget, resolve, persistent).run(stream)
    keys = _Machine(budget, resolve, plain).run(stream)
    if keys.kind != "list" or keys.items is None:
        raise Unreadable("has no list of storage keys")
    for key in keys.items:
        itemsize, numel = storages.by_key.get(_key(key), (None, None))
        if itemsize is None:
            raise Unreadable(f"lists storage {str(key.value)[:40]!r}, which it never declared")
        if stream.int64() != numel:
            raise Unreadable(f"holds a block for storage {str(key.value)[:40]!r} of another size than declared")
        stream.skip(numel * itemsize)


# tar ------------------------------------------------------------------------


def _open_tar(f: BinaryIO) -> tarfile.TarFile | None:
    """The tar archive ``torch.load`` would open (it tries ``tarfile`` first on a file at offset 0), else None.

    ``tarfile`` reads every header before torch asks for a member, extension headers (PAX, GNU
    long names, sparse maps) of any size included: :func:`_plain_tar` walks them first.
    """
    if not _plain_tar(f):
        return None
    f.seek(0)
    try:
        return tarfile.open(fileobj=f, mode="r:", format=tarfile.PAX_FORMAT)
    except tarfile.TarError:
        return None
    except Exception as exc:  # noqa: BLE001 - torch.load would fail on it the same way
        raise Unreadable(f"a damaged tar archive: {str(exc)[:200]}") from None


def _plain_tar(f: BinaryIO) -> bool:
    """Whether ``tarfile`` will open ``f``; refused if it holds what torch's tar writer never makes.

    Block by block with ``tarfile``'s own header parser (``frombuf``, which reads one block and
    nothing more), stopping where ``tarfile`` stops: at most ``MAX_TAR_MEMBERS`` headers, each
    of a plain file or folder, so that no extension header can change how the rest is read.
    """
    offset = count = 0
    while True:
        f.seek(offset)
        try:
            info = tarfile.TarInfo.frombuf(f.read(tarfile.BLOCKSIZE), tarfile.ENCODING, "surrogateescape")
        except tarfile.EOFHeaderError:
            return True  # tarfile opens it, empty from here on
        except tarfile.HeaderError:
            return offset > 0  # tarfile refuses a first header it cannot read, stops at a later one
        count += 1
        if count > MAX_TAR_MEMBERS:
            raise Refusal(f"is a tar archive of more than {MAX_TAR_MEMBERS} members (torch writes three)")
        if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE):
            raise Refusal(f"has a tar header of type {info.type!r}, which torch's tar writer never makes (links, "
                          "pipes and extension headers can make the reader read another file, wait or fill memory)")
        offset += tarfile.BLOCKSIZE + (-(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE if info.isreg() else 0)


def _tar_member(tar: tarfile.TarFile, name: str, budget: _Budget) -> tuple[_Stream, Any]:
    try:
        info = tar.getmember(name)
    except KeyError:
        raise Unreadable(f"a tar archive without the {name!r} member torch reads") from None
    if not info.isreg() or info.sparse is not None:
        raise Refusal(f"has a tar member {name!r} that is not a plain file (a link or a pipe would make torch read "
                      "another file or wait forever)")
    if info.size > budget.file_size:
        raise Unreadable(f"has a tar member {name!r} larger than the file")
    raw = tar.extractfile(info)
    return _Stream(raw, info.size), raw


def _tar_key(value: V) -> int:
    """torch's tar reader looks every object up as ``int(saved_id)``."""
    try:
        return int(_key(value))
    except ValueError:
        raise Unreadable("declares a storage or tensor whose key is not a number") from None


class _TarScan:
    """torch's oldest format: ``storages`` (records and blocks), ``tensors`` (records and raw sizes), ``pickle``."""

    def __init__(self, tar: tarfile.TarFile, budget: _Budget, resolve: Resolve) -> None:
        self.tar, self.budget, self.resolve = tar, budget, resolve
        self.storages = _Storages(budget)
        self.tensors: set[int] = set()

    def run(self) -> None:
        for name, scan in (("storages", self.scan_storages), ("tensors", self.scan_tensors),
                           ("pickle", self.scan_pickle)):
            stream, raw = _tar_member(self.tar, name, self.budget)
            with raw:
                scan(stream)

    def record(self, stream: _Stream, persistent: Callable[[V], V] | None = None) -> V:
        return _Machine(self.budget, self.resolve, persistent or self.no_persistent).run(stream)

    def no_persistent(self, pid: V) -> V:
        raise Unreadable("has a persistent id outside its main record")

    def triple(self, stream: _Stream, what: str) -> list[V]:
        value = self.record(stream)
        if value.kind != "tuple" or value.items is None or len(value.items) != 3:
            raise Unreadable(f"has a {what} record that is not a triple")
        return value.items

    def scan_storages(self, stream: _Stream) -> None:
        """A count, then per storage a record and a block (count, then bytes) that torch allocates first."""
        for _ in range(_count(self.record(stream), "a storage count")):
            key, _location, kind = self.triple(stream, "storage")
            itemsize, numel = _storage_type(kind), stream.int64()
            if numel < 0 or numel * itemsize > stream.left:
                raise Unreadable("declares a storage block longer than what remains")
            self.storages.declare(_tar_key(key), itemsize, numel)
            stream.skip(numel * itemsize)
        for view in self.record(stream).items or []:
            parts = view.items or []
            if len(parts) != 4 or _tar_key(parts[1]) not in self.storages.by_key:
                raise Unreadable("has a storage view that is not (key, root, offset, size)")
            self.storages.by_key.setdefault(_tar_key(parts[0]), self.storages.by_key[_tar_key(parts[1])])

    def scan_tensors(self, stream: _Stream) -> None:
        """A count, then per tensor a record and raw dimensions, sizes, strides and offset."""
        for _ in range(_count(self.record(stream), "a tensor count")):
            key, storage, _type = self.triple(stream, "tensor")
            itemsize = self.storages.by_key.get(_tar_key(storage), (None,))[0]
            header = stream.read(8)
            ndim = struct.unpack("<i", header[:4])[0] if len(header) == 8 else -1
            if itemsize is None or not 0 <= ndim <= MAX_NDIM or stream.left < 16 * ndim + 8:
                raise Unreadable("has a tensor record torch cannot read")
            shape = struct.unpack(f"<{ndim}q", stream.read(8 * ndim))
            stream.skip(8 * ndim + 8)  # strides and offset: torch checks them against the storage
            if any(d < 0 for d in shape):
                raise Unreadable("has a tensor of negative size")
            _view(self.budget, itemsize, shape, ndim, "a tensor record")
            self.tensors.add(_tar_key(key))

    def scan_pickle(self, stream: _Stream) -> None:
        self.record(stream, self.persistent)

    def persistent(self, pid: V) -> V:
        if pid.kind == "tuple":  # ('module'-like: type, file, source): torch returns the type
            return self.storages.module_id(pid.items[0] if pid.items else V("object"))
        key = _tar_key(pid)
        if key in self.tensors:
            return V("tensor")
        if key in self.storages.by_key:
            return V("storage", info=self.storages.by_key[key])
        raise Unreadable("refers to a storage or tensor it never declared")
