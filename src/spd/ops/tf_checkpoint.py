"""TensorFlow checkpoints (the V2 "tensor bundle" of ``Saver`` / ``tf.train.Checkpoint``) read and
written without TensorFlow.

A checkpoint ``PREFIX`` is ``PREFIX.index``, an SSTable (LevelDB's table format) mapping each
variable name to a ``BundleEntryProto`` (dtype, shape, shard, offset, size), and the shards
``PREFIX.data-NNNNN-of-MMMMM`` holding the raw little-endian tensor bytes. TensorFlow writes the
index uncompressed; that is the only kind read here. Every tensor's CRC32C is verified on reading.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import torch

from .atomic import atomic_path
from .errors import InputError
from .state import WeightsError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER = 5  # compression type byte + masked crc32c
# tensorflow/core/framework/types.proto
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
          10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64}
DTYPE_CODES = {np.dtype(v): k for k, v in DTYPES.items()}


class CheckpointFormatError(WeightsError):
    """A file that is not a readable TensorFlow checkpoint; the message names it."""


@dataclass(frozen=True)
class Entry:
    """Where one tensor lies: ``size`` bytes at ``offset`` of shard ``shard``."""

    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc32c: int = 0  # masked, of the tensor's bytes


def masked_crc32c(data: bytes) -> int:
    """LevelDB / TensorFlow store CRC32C values rotated and offset ("masked")."""
    # Imported here, not with the module: training imports this module (pretrained weights), and
    # an image with PyTorch but without google-crc32c (a GPU machine's) must still train.
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# --- protobuf wire format (the two small messages the bundle uses) ---------------------------

def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise CheckpointFormatError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(message: bytes):
    """(field number, wire type, value) of a protobuf message; value is an int or bytes."""
    pos = 0
    while pos < len(message):
        key, pos = _varint(message, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(message, pos)
        elif wire == 1:
            value, pos = message[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(message, pos)
            value, pos = message[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = message[pos:pos + 4], pos + 4
        else:
            raise CheckpointFormatError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _parse_entry(message: bytes) -> Entry:
    dtype, shape, shard, offset, size, crc = 0, [], 0, 0, 0, 0
    for number, _, value in _fields(message):
        if number == 1:
            dtype = value
        elif number == 2:  # TensorShapeProto: repeated Dim dim = 2 {int64 size = 1}
            shape = [next((v for n, _, v in _fields(dim) if n == 1), 0) for n, _, dim in _fields(value) if n == 2]
        elif number == 3:
            shard = value
        elif number == 4:
            offset = value
        elif number == 5:
            size = value
        elif number == 6:
            crc = struct.unpack("<I", value)[0]
        elif number == 7:
            raise CheckpointFormatError("partitioned (sliced) variables are not supported")
    return Entry(dtype, tuple(shape), shard, offset, size, crc)


def _put_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _put_field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, bytes):
        return _put_varint(number << 3 | 2) + _put_varint(len(value)) + value
    return _put_varint(number << 3) + _put_varint(value)


def _entry_message(entry: Entry) -> bytes:
    shape = b"".join(_put_field(2, _put_field(1, d)) for d in entry.shape)
    fields = [_put_field(1, entry.dtype), _put_field(2, shape)]
    fields += [_put_field(n, v) for n, v in ((3, entry.shard), (4, entry.offset), (5, entry.size)) if v]
    return b"".join(fields) + _put_varint(6 << 3 | 5) + struct.pack("<I", entry.crc32c)


# --- the SSTable ---------------------------------------------------------------------------

def _block_entries(block: bytes):
    """(key, value) of one table block: prefix-compressed keys, then the restart array."""
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end, pos, key = len(block) - 4 * (restarts + 1), 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + length]
        pos += length


def _read_block(data: bytes, handle: bytes, path: Path) -> bytes:
    offset, pos = _varint(handle, 0)
    size, _ = _varint(handle, pos)
    if offset + size + BLOCK_TRAILER > len(data):
        raise CheckpointFormatError(f"{path}: truncated (a block ends past the end of the file)")
    if data[offset + size] != 0:
        raise CheckpointFormatError(f"{path}: compressed index blocks are not supported")
    if masked_crc32c(data[offset:offset + size + 1]) != struct.unpack_from("<I", data, offset + size + 1)[0]:
        raise CheckpointFormatError(f"{path}: corrupt (a block's checksum does not match)")
    return data[offset:offset + size]


def read_index(prefix: Path | str) -> dict[str, Entry]:
    """Variable name -> :class:`Entry` from ``PREFIX.index``."""
    path = Path(f"{prefix}.index")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (give the checkpoint prefix, e.g. model.ckpt-30000, "
                                "without .index or .data-*)")
    data = path.read_bytes()
    if len(data) < FOOTER_SIZE or struct.unpack_from("<Q", data, len(data) - 8)[0] != TABLE_MAGIC:
        raise CheckpointFormatError(f"{path}: not a TensorFlow checkpoint index (no table footer)")
    footer = data[-FOOTER_SIZE:]
    _, pos = _varint(footer, 0)
    _, pos = _varint(footer, pos)  # skip the metaindex handle
    index = _read_block(data, footer[pos:], path)
    entries = {}
    for _, handle in _block_entries(index):
        for key, value in _block_entries(_read_block(data, handle, path)):
            if key:  # the empty key holds the bundle header
                entries[key.decode("utf-8")] = _parse_entry(value)
    return entries


def read_checkpoint(prefix: Path | str) -> dict[str, np.ndarray]:
    """Every variable of a checkpoint as a (read-only) numpy array."""
    entries = read_index(prefix)
    shards = {}
    tensors = {}
    for name, e in entries.items():
        if e.dtype not in DTYPES:
            raise CheckpointFormatError(f"{prefix}: variable {name!r} has an unsupported dtype (code {e.dtype})")
        dtype = np.dtype(DTYPES[e.dtype]).newbyteorder("<")
        if e.size != int(np.prod(e.shape, dtype=np.int64)) * dtype.itemsize:
            raise CheckpointFormatError(f"{prefix}: variable {name!r}: {e.size} bytes for shape {e.shape}")
        if e.shard not in shards:
            shard = Path(f"{prefix}.data-{e.shard:05d}-of-{max(x.shard for x in entries.values()) + 1:05d}")
            if not shard.is_file():
                raise FileNotFoundError(f"{shard}: checkpoint data shard not found")
            shards[e.shard] = np.memmap(shard, dtype=np.uint8, mode="r")
        raw = shards[e.shard]
        if e.offset + e.size > raw.size:
            raise CheckpointFormatError(f"{prefix}: variable {name!r} lies past the end of its data shard")
        data = bytes(raw[e.offset:e.offset + e.size])
        if masked_crc32c(data) != e.crc32c:
            raise CheckpointFormatError(f"{prefix}: variable {name!r} is corrupt (its checksum does not match)")
        tensors[name] = np.frombuffer(data, dtype=dtype).reshape(e.shape)
    return tensors


def write_checkpoint(prefix: Path | str, tensors: dict[str, np.ndarray]) -> None:
    """Writes ``PREFIX.index`` and ``PREFIX.data-00000-of-00001`` as TensorFlow does (one shard, one
    uncompressed table block)."""
    prefix = str(prefix)
    entries, offset = {}, 0
    with atomic_path(Path(f"{prefix}.data-00000-of-00001")) as tmp, open(tmp, "wb") as f:
        for name in sorted(tensors):
            array = np.ascontiguousarray(tensors[name])
            dtype = array.dtype.newbyteorder("=")
            if dtype not in DTYPE_CODES:
                raise InputError(f"variable {name!r}: dtype {array.dtype} has no TensorFlow code here")
            data = array.astype(dtype.newbyteorder("<"), copy=False).tobytes()
            f.write(data)
            entries[name] = Entry(DTYPE_CODES[dtype], array.shape, 0, offset, len(data), masked_crc32c(data))
            offset += len(data)
    header = _put_field(1, 1) + _put_field(3, _put_field(1, 1))  # num_shards 1, version {producer 1}
    records = [(b"", header)] + [(name.encode("utf-8"), _entry_message(e)) for name, e in entries.items()]
    block, starts = bytearray(), []
    for key, value in records:  # every entry a restart point: no shared key prefixes
        starts.append(len(block))
        block += _put_varint(0) + _put_varint(len(key)) + _put_varint(len(value)) + key + value
    block += b"".join(struct.pack("<I", s) for s in starts) + struct.pack("<I", len(starts))
    empty = struct.pack("<II", 0, 1)  # a block with no entries: one restart at 0
    out = bytearray()

    def add(data: bytes) -> bytes:
        handle = _put_varint(len(out)) + _put_varint(len(data))
        out.extend(data + b"\0" + struct.pack("<I", masked_crc32c(data + b"\0")))
        return handle

    data_handle = add(bytes(block))
    meta_handle = add(empty)
    last = records[-1][0]
    index_block = _put_varint(0) + _put_varint(len(last)) + _put_varint(len(data_handle)) + last + data_handle
    index_handle = add(index_block + struct.pack("<II", 0, 1))
    footer = (meta_handle + index_handle).ljust(FOOTER_SIZE - 8, b"\0") + struct.pack("<Q", TABLE_MAGIC)
    with atomic_path(Path(f"{prefix}.index")) as tmp:
        Path(tmp).write_bytes(bytes(out) + footer)


# Training leftovers a checkpoint may also hold; they are not part of a model.
IGNORED_SUFFIXES = ("/Momentum",)
IGNORED_NAMES = ("global_step",)


def _listed(kind: str, names: list[str]) -> str:
    return f"{len(names)} {kind} variable(s): {', '.join(names[:8])}{' …' if len(names) > 8 else ''}"


def map_variables(variables: dict[str, np.ndarray], names: dict[str, str], state: dict[str, torch.Tensor],
                  source: str, what: str, others_allowed: bool = False) -> dict[str, torch.Tensor]:
    """TensorFlow variables -> tensors for the state-dict keys of ``names`` (key -> variable), conv
    kernels transposed. Raises ConversionError naming every missing or wrongly shaped variable and,
    unless ``others_allowed``, every unknown one."""
    wanted = set(names.values())
    problems = []
    if not others_allowed:
        unknown = sorted(n for n in variables if n not in wanted and n not in IGNORED_NAMES
                         and not n.endswith(IGNORED_SUFFIXES))
        if unknown:
            problems.append(_listed("unknown", unknown))
    missing = sorted(wanted - set(variables))
    if missing:
        problems.append(_listed("missing", missing))
    converted = {}
    for key, name in names.items():
        if name not in variables:
            continue
        value = torch.from_numpy(np.array(variables[name], dtype=np.float32))
        if value.dim() == 4:
            value = value.permute(3, 2, 0, 1)  # [kh, kw, in, out] -> [out, in, kh, kw]
        if tuple(value.shape) != tuple(state[key].shape):
            expected = tuple(state[key].shape)
            if len(expected) == 4:
                expected = (expected[2], expected[3], expected[1], expected[0])
            problems.append(f"variable {name!r} has shape {tuple(variables[name].shape)}, expected {expected}")
            continue
        converted[key] = value
    if problems:
        raise WeightsError(f"{source}: not {what}: " + "; ".join(problems))
    return converted
