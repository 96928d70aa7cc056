"""Random mutations of valid header sets (the seeded part of the corpus)."""

from tracejoin_tools.hostile.cases import as_bytes
from tracejoin_tools.hostile.generators.combined import FORMATS


def _random_hex(rng, n):
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


MUTATION_BYTES = b"0123456789abcdefABCDEF-:%3A \tgxz_.,=;" + bytes([0x0D, 0x00, 0x01, 0x1F, 0x7F, 0x80, 0xC3, 0xFF])


def fuzz(rng, count=320):
    """Valid header sets with one to three random mutations each."""
    for i in range(count):
        trace = _random_hex(rng, rng.choice((16, 32)))
        span = _random_hex(rng, 16)
        chosen = rng.sample(list(FORMATS), rng.randint(1, 4))
        headers = []
        for name in chosen:
            t = trace if name != "tp" else trace.rjust(32, "0")
            if rng.random() < 0.3:
                t, span = _random_hex(rng, 32), _random_hex(rng, 16)
            headers += FORMATS[name](t, span, rng.random() < 0.7)
        if "tp" in chosen and rng.random() < 0.4:
            headers.append(("tracestate", ",".join(f"{_random_hex(rng, 3).replace('0', 'a')}=v{j}" for j in range(rng.randint(1, 40)))))
        headers = [(n, as_bytes(v)) for n, v in headers]
        for _ in range(rng.randint(1, 3)):
            k = rng.randrange(len(headers))
            name, value = headers[k]
            op = rng.choice(("replace", "insert", "delete", "truncate", "duplicate-header", "drop-header", "swap-case", "repeat-value"))
            pos = rng.randrange(len(value) + 1)
            byte = bytes([rng.choice(MUTATION_BYTES)])
            if op == "replace" and value:
                value = value[: min(pos, len(value) - 1)] + byte + value[min(pos, len(value) - 1) + 1 :]
            elif op == "insert":
                value = value[:pos] + byte + value[pos:]
            elif op == "delete" and value:
                value = value[: min(pos, len(value) - 1)] + value[min(pos, len(value) - 1) + 1 :]
            elif op == "truncate":
                value = value[:pos]
            elif op == "swap-case":
                value = value.swapcase()
            elif op == "repeat-value":
                value = value + value
            headers[k] = (name, value)
            if op == "duplicate-header":
                headers.insert(rng.randrange(len(headers) + 1), headers[k])
            elif op == "drop-header" and len(headers) > 1:
                headers.pop(k)
        yield f"{i:03d}", headers
