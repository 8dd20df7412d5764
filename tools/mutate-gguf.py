#!/usr/bin/env python3
"""In-place mutations of a GGUF file's header, for the mutation test (scripts/mutation-test.sh).

Every mutation overwrites a few bytes and keeps the file's size, so one copy of a model can be
patched, run and restored mutation after mutation. Three kinds:
  meta    a scalar metadata value (integers, floats, bools; the length of a string), or the type
          tag of any metadata entry
  tensor  a field of the tensor table: dimension count, one dimension, type, data offset, or a
          character of the name
  data    the first element of a small f32 tensor (a norm) set to NaN or Inf

  mutate-gguf.py plan [--seed S] [--count N] MODEL...
      A seeded sample of N mutations spread over the models, one per line:
      MODEL<TAB>OFFSET<TAB>HEX BYTES<TAB>what it does
  mutate-gguf.py patch FILE OFFSET HEX
      Writes the bytes at OFFSET and prints the bytes that were there (hex), to restore them.
  mutate-gguf.py set SRC DST KEY VALUE
      Copies SRC to DST with scalar metadata KEY set to VALUE in its own type (the issue's
      patch_kv.py, typed by the file instead of by hand).
"""
import argparse
import math
import random
import struct
import sys

# GGUF metadata types: struct format of the scalars (bool as one byte).
SCALAR = {0: '<B', 1: '<b', 2: '<H', 3: '<h', 4: '<I', 5: '<i', 6: '<f', 7: '<B', 10: '<Q',
          11: '<q', 12: '<d'}
STRING, ARRAY = 8, 9
TYPE_NAMES = {0: 'u8', 1: 'i8', 2: 'u16', 3: 'i16', 4: 'u32', 5: 'i32', 6: 'f32', 7: 'bool',
              8: 'string', 9: 'array', 10: 'u64', 11: 'i64', 12: 'f64'}
GGML_F32 = 0


class Entry:
    """One field of the header: where its bytes are and what they hold."""

    def __init__(self, kind, name, offset, fmt, value, extra=None):
        self.kind, self.name, self.offset, self.fmt, self.value = kind, name, offset, fmt, value
        self.extra = extra or {}


def read_header(path, max_bytes=64 << 20):
    """The metadata entries and tensor table of a GGUF file (v2/v3), as a list of Entry."""
    with open(path, 'rb') as f:
        b = f.read(max_bytes)
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, b, pos)[0]
        pos += struct.calcsize(fmt)
        return v

    def string():
        n = take('<Q')
        nonlocal pos
        s = b[pos:pos + n].decode('utf-8', 'replace')
        pos += n
        return s

    if b[:4] != b'GGUF':
        raise SystemExit(f'{path}: not a GGUF file')
    pos = 4
    version = take('<I')
    if version not in (2, 3):
        raise SystemExit(f'{path}: GGUF version {version} is not supported here')
    n_tensors, n_kv = take('<Q'), take('<Q')
    entries = []
    for _ in range(n_kv):
        key = string()
        type_at = pos
        t = take('<I')
        entries.append(Entry('meta-type', key, type_at, '<I', t))
        if t in SCALAR:
            entries.append(Entry('meta', key, pos, SCALAR[t], take(SCALAR[t]), {'type': t}))
        elif t == STRING:
            entries.append(Entry('meta-strlen', key, pos, '<Q', take('<Q')))
            pos += entries[-1].value
        elif t == ARRAY:
            et_at = pos
            et = take('<I')
            n_at = pos
            n = take('<Q')
            entries.append(Entry('meta-arraylen', key, n_at, '<Q', n, {'elem': et, 'elem_at': et_at}))
            if et in SCALAR:
                pos += n * struct.calcsize(SCALAR[et])
            elif et == STRING:
                for _ in range(n):
                    string()
            else:
                raise SystemExit(f'{path}: array of type {et} in {key}')
        else:
            raise SystemExit(f'{path}: metadata type {t} in {key}')
    for _ in range(n_tensors):
        name_at = pos + 8
        name = string()
        entries.append(Entry('tensor-name', name, name_at, None, name))
        nd_at = pos
        nd = take('<I')
        entries.append(Entry('tensor-ndims', name, nd_at, '<I', nd))
        dims = []
        for i in range(nd):
            entries.append(Entry('tensor-dim', name, pos, '<Q', take('<Q'), {'index': i}))
            dims.append(entries[-1].value)
        ty_at = pos
        ty = take('<I')
        entries.append(Entry('tensor-type', name, ty_at, '<I', ty, {'dims': dims}))
        entries.append(Entry('tensor-offset', name, pos, '<Q', take('<Q'), {'type': ty, 'dims': dims}))
    # Tensor data starts at the next multiple of the alignment after the table.
    align = next((e.value for e in entries if e.kind == 'meta' and e.name == 'general.alignment'), 32)
    data_start = (pos + align - 1) // align * align
    return entries, data_start


def fits(fmt, v):
    try:
        struct.pack(fmt, v)
        return True
    except (struct.error, OverflowError):
        return False


def int_values(fmt, v):
    """Boundary values for an integer field of format fmt that held v."""
    bits = struct.calcsize(fmt) * 8
    signed = fmt[1].islower()
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    cands = [0, 1, 2, 3, v - 1, v + 1, v * 2, v * 1024, v // 2, hi, lo, hi - 1, 1 << 15, 1 << 16,
             (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32, 1 << 62, (1 << 63) - 1, 1 << 63,
             -1, -2, 1 << 21]
    out = []
    for c in cands:
        if not signed:
            c &= (1 << bits) - 1  # -1 becomes all ones
        if c != v and lo <= c <= hi and c not in out:
            out.append(c)
    return out


def float_values(v):
    cands = [0.0, -0.0, -1.0, 1.0, math.nan, -math.nan, math.inf, -math.inf, 1e38, -1e38, 1e-38,
             1e-45, -v, v * 1e6, v * 1e-6, 3.0e38 if v else 2.0]
    return [c for c in cands if not (c == v and math.copysign(1, c) == math.copysign(1, v))]


def pack(fmt, v):
    if fmt in ('<f', '<d') and isinstance(v, float) and math.isnan(v) and math.copysign(1, v) < 0:
        return struct.pack(fmt, -math.nan)
    return struct.pack(fmt, v)


def mutations_of(e, data_start, size):
    """(bytes, description) pairs for one header field."""
    out = []
    if e.kind == 'meta':
        t = e.extra['type']
        if t in (6, 12):
            vals = float_values(e.value)
        elif t == 7:
            vals = [0 if e.value else 1, 2, 255]
        else:
            vals = int_values(e.fmt, e.value)
        for v in vals:
            out.append((pack(e.fmt, v), f'{e.name} ({TYPE_NAMES[t]}) {e.value!r} -> {v!r}'))
    elif e.kind == 'meta-type':
        for t in list(TYPE_NAMES) + [13, 255, 1 << 31]:
            if t != e.value:
                out.append((struct.pack('<I', t),
                            f'{e.name} type {TYPE_NAMES[e.value]} -> {TYPE_NAMES.get(t, t)}'))
    elif e.kind in ('meta-strlen', 'meta-arraylen'):
        for v in int_values('<Q', e.value):
            out.append((struct.pack('<Q', v), f'{e.name} {e.kind[5:]} {e.value} -> {v}'))
        if e.kind == 'meta-arraylen':
            for et in (0, 4, 6, 8, 9, 12, 13):
                if et != e.extra['elem']:
                    out.append((struct.pack('<I', et), f'{e.name} element type -> {TYPE_NAMES.get(et, et)}',
                                e.extra['elem_at']))
    elif e.kind == 'tensor-ndims':
        for v in (0, 1, 2, 3, 4, 5, 255, 1 << 31, (1 << 32) - 1):
            if v != e.value:
                out.append((struct.pack('<I', v), f'tensor {e.name} n_dims {e.value} -> {v}'))
    elif e.kind == 'tensor-dim':
        for v in int_values('<Q', e.value) + [e.value + 32, e.value + 256, max(e.value - 32, 0)]:
            if v != e.value:
                out.append((struct.pack('<Q', v), f'tensor {e.name} dim[{e.extra["index"]}] {e.value} -> {v}'))
    elif e.kind == 'tensor-type':
        for v in list(range(0, 40)) + [255, 1 << 31]:
            if v != e.value:
                out.append((struct.pack('<I', v), f'tensor {e.name} type {e.value} -> {v}'))
    elif e.kind == 'tensor-offset':
        for v in [0, 1, e.value + 1, e.value + 32, e.value - 32, size, size - data_start, 1 << 40,
                  (1 << 63) - 1, (1 << 64) - 1, (1 << 64) - 32]:
            if v != e.value and 0 <= v < (1 << 64):
                out.append((struct.pack('<Q', v), f'tensor {e.name} offset {e.value} -> {v}'))
    elif e.kind == 'tensor-name':
        for i in (0, len(e.value) - 1):
            raw = e.value.encode()
            for c in (b'x', b'\0', b'\xff'):
                out.append((c, f'tensor {e.name} name[{i}] -> {c!r}', e.offset + i))
    return out


def data_mutations(e, data_start):
    """NaN / Inf into the first element of a small f32 tensor (norm weights, rope factors)."""
    if e.kind != 'tensor-offset' or e.extra['type'] != GGML_F32 or len(e.extra['dims']) != 1:
        return []
    at = data_start + e.value
    return [(struct.pack('<f', v), f'tensor {e.name} element 0 -> {v}', at)
            for v in (math.nan, math.inf, -math.inf)]


def population(path):
    """Every mutation of one model as (offset, bytes, description), grouped by kind."""
    import os
    entries, data_start = read_header(path)
    size = os.path.getsize(path)
    groups = {'meta': [], 'meta-shape': [], 'tensor': [], 'data': []}
    for e in entries:
        group = ('meta' if e.kind == 'meta' else 'meta-shape' if e.kind.startswith('meta') else
                 'tensor')
        for m in mutations_of(e, data_start, size):
            at = m[2] if len(m) > 2 else e.offset
            groups[group].append((at, m[0], m[1]))
        for m in data_mutations(e, data_start):
            groups['data'].append((m[2], m[0], m[1]))
    return groups


# Share of each kind in a sample: scalar metadata values are where hyper-parameters break.
WEIGHTS = {'meta': 0.55, 'meta-shape': 0.10, 'tensor': 0.28, 'data': 0.07}


def plan(args):
    rng = random.Random(args.seed)
    pops = {m: population(m) for m in args.models}
    lines = []
    for i in range(args.count):
        model = args.models[i % len(args.models)]
        kinds = [k for k in WEIGHTS if pops[model][k]]
        kind = rng.choices(kinds, [WEIGHTS[k] for k in kinds])[0]
        at, data, what = rng.choice(pops[model][kind])
        lines.append(f'{model}\t{at}\t{data.hex()}\t{kind}: {what}')
    print('\n'.join(lines))


def patch(args):
    data = bytes.fromhex(args.hex)
    with open(args.file, 'r+b') as f:
        f.seek(args.offset)
        old = f.read(len(data))
        f.seek(args.offset)
        f.write(data)
    print(old.hex())


def set_key(args):
    entries, _ = read_header(args.src)
    e = next((e for e in entries if e.kind == 'meta' and e.name == args.key), None)
    if e is None:
        raise SystemExit(f'{args.src}: no scalar metadata key {args.key}')
    v = float(args.value) if e.fmt in ('<f', '<d') else int(args.value, 0)
    if not fits(e.fmt, v):
        raise SystemExit(f'{args.value} does not fit {TYPE_NAMES[e.extra["type"]]}')
    with open(args.src, 'rb') as f:
        b = bytearray(f.read())
    b[e.offset:e.offset + struct.calcsize(e.fmt)] = pack(e.fmt, v)
    with open(args.dst, 'wb') as f:
        f.write(b)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    a = sub.add_parser('plan')
    a.add_argument('--seed', type=int, default=0)
    a.add_argument('--count', type=int, default=100)
    a.add_argument('models', nargs='+')
    a.set_defaults(run=plan)
    a = sub.add_parser('patch')
    a.add_argument('file')
    a.add_argument('offset', type=int)
    a.add_argument('hex')
    a.set_defaults(run=patch)
    a = sub.add_parser('set')
    for name in ('src', 'dst', 'key', 'value'):
        a.add_argument(name)
    a.set_defaults(run=set_key)
    args = p.parse_args()
    args.run(args)


if __name__ == '__main__':
    main()
