"""A sha256 whose state can be saved in one invocation and carried on in the next.

A report that outgrows one Lambda run is written by several invocations, and its manifest needs the
sha256 of the whole file. hashlib cannot export its state, and a second pass that reads the assembled
object back costs a full download (minutes at 10 GB). So the hash runs in the OpenSSL library that
Python's own hashlib is linked to, through its SHA256_Init/Update/Final functions, whose context is a
plain struct: its fields (eight 32-bit words of the chaining value, the bit count, the pending block and
its length) are the whole state. The state is saved field by field, not as raw memory, so it means the
same on any machine. Speed is hashlib's own: the same C code, and ctypes lets go of the GIL while it runs.
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
from functools import cache
from typing import Any

_WORDS = 8
_BLOCK = 64


class _Sha256Context(ctypes.Structure):
    # OpenSSL's SHA256_CTX (include/openssl/sha.h): SHA_LONG is a 32-bit unsigned int on every platform.
    _fields_ = (
        ("h", ctypes.c_uint32 * _WORDS),
        ("Nl", ctypes.c_uint32),
        ("Nh", ctypes.c_uint32),
        ("data", ctypes.c_uint8 * _BLOCK),
        ("num", ctypes.c_uint32),
        ("md_len", ctypes.c_uint32),
    )


@cache
def _libcrypto() -> ctypes.CDLL:
    """The libcrypto this interpreter's hashlib already loaded (found in the process's own memory map)."""
    hashlib.sha256()  # makes sure _hashlib, and with it libcrypto, is loaded
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "libcrypto" in line and "/" in line}
    except OSError:
        paths = set()
    for path in sorted(paths):
        library = ctypes.CDLL(path)
        if all(hasattr(library, name) for name in ("SHA256_Init", "SHA256_Update", "SHA256_Final")):
            library.SHA256_Update.argtypes = (ctypes.POINTER(_Sha256Context), ctypes.c_void_p, ctypes.c_size_t)
            library.SHA256_Init.argtypes = (ctypes.POINTER(_Sha256Context),)
            library.SHA256_Final.argtypes = (ctypes.c_char_p, ctypes.POINTER(_Sha256Context))
            return library
    raise RuntimeError("no libcrypto with SHA256_Init is loaded: the resumable sha256 cannot run here")


class ResumableSha256:
    def __init__(self, state: dict[str, Any] | None = None) -> None:
        self._library = _libcrypto()
        self._context = _Sha256Context()
        if state is None:
            self._library.SHA256_Init(ctypes.byref(self._context))
        else:
            self._restore(state)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if isinstance(data, bytes):
            self._library.SHA256_Update(ctypes.byref(self._context), data, len(data))
            return
        view = memoryview(data).cast("B")
        if view.readonly:
            view = memoryview(bytearray(view))
        buffer = (ctypes.c_char * view.nbytes).from_buffer(view)
        self._library.SHA256_Update(ctypes.byref(self._context), buffer, view.nbytes)

    def hexdigest(self) -> str:
        """The digest of everything so far; the hash can go on after it."""
        copy = _Sha256Context.from_buffer_copy(self._context)
        out = ctypes.create_string_buffer(32)
        self._library.SHA256_Final(out, ctypes.byref(copy))
        return out.raw.hex()

    def state(self) -> dict[str, Any]:
        """Everything the next invocation needs to go on, as JSON-ready values."""
        context = self._context
        return {
            "h": list(context.h),
            "bits": context.Nh << 32 | context.Nl,
            "pending": base64.b64encode(bytes(context.data)[: context.num]).decode("ascii"),
        }

    def _restore(self, state: dict[str, Any]) -> None:
        words, bits, pending = state["h"], int(state["bits"]), base64.b64decode(state["pending"])
        if len(words) != _WORDS or not all(isinstance(word, int) and 0 <= word < 2**32 for word in words):
            raise ValueError("a sha256 state has eight 32-bit words")
        if len(pending) >= _BLOCK or bits < 0 or bits % 8 or (bits // 8) % _BLOCK != len(pending):
            raise ValueError("a sha256 state's pending bytes do not match its length")
        context = self._context
        context.h[:] = words
        context.Nl, context.Nh = bits & 0xFFFFFFFF, bits >> 32
        ctypes.memmove(context.data, pending, len(pending))
        context.num = len(pending)
        context.md_len = 32
