#!/usr/bin/env python3
"""Time the parser on a corpus, and prove a faster parser says exactly what the old one said.

Why: the element is the product. A speed-up of the MIME parser or of the HTML reduction is only
acceptable if every field of every element stays the same. ``dump`` writes one line per message
(a digest of its raw bytes and the full parse result as JSON); ``compare`` diffs two dumps, so a
dump made before a change can be checked against one made after it. ``time`` prints where a
message's CPU goes (parse, element, JSON).

The corpus: the benchmark mailbox (``--messages``), the demo's sample mailbox (threads,
non-ASCII headers, the malformed messages), every message the parser unit tests build (recorded
with ``--tests``), and mutilated copies of all of them (truncated, bytes flipped, CRLF/LF mixed),
which is where parsers differ first.

    python -m benchmarks.parser_check dump /tmp/before.jsonl [--messages 2000] [--tests]
    python -m benchmarks.parser_check compare /tmp/before.jsonl /tmp/after.jsonl
    python -m benchmarks.parser_check time [--messages 2000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.mailbox import build_mailbox  # noqa: E402
from futurnal.demo.sample_mailbox import generate_mailbox  # noqa: E402
from futurnal.parse.parser import parse_message  # noqa: E402

_RECORDER = '''
import pickle, futurnal.parse.parser as p
_seen, _real = [], p.parse_message
def _recording(raw):
    _seen.append(bytes(raw) if isinstance(raw, (bytes, bytearray)) else str(raw).encode("utf-8", "surrogateescape"))
    return _real(raw)
p.parse_message = _recording
def pytest_sessionfinish(session):
    with open(__OUT__, "wb") as handle:
        pickle.dump(_seen, handle)
'''


def test_messages() -> list[bytes]:
    """Every message the parser unit tests hand to ``parse_message``, recorded by a pytest plugin."""
    import pickle

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "seen.pickle"
        (Path(tmp) / "parse_recorder.py").write_text(_RECORDER.replace("__OUT__", repr(str(out))))
        env_path = f"{tmp}:{REPO}"
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "parse_recorder", "-p", "no:cacheprovider",
             str(REPO / "tests/unit/test_parser.py"), str(REPO / "tests/unit/test_element.py")],
            check=False, cwd=REPO, env={**__import__("os").environ, "PYTHONPATH": env_path},
            stdout=subprocess.DEVNULL,
        )
        with open(out, "rb") as handle:
            return list(pickle.load(handle))


def mutilated(raw: bytes, rng: random.Random) -> Iterator[bytes]:
    """Broken copies of one message: truncated, with flipped bytes, with line ends changed."""
    if len(raw) > 40:
        yield raw[: rng.randrange(20, len(raw))]
        data = bytearray(raw)
        for _ in range(max(1, len(data) // 500)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        yield bytes(data)
    yield raw.replace(b"\r\n", b"\n")
    yield raw.replace(b"\r\n", b"\r")


def corpus(messages: int, with_tests: bool, seed: int = 5) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    sources: list[tuple[str, list[bytes]]] = [
        ("bench", [m.raw for m in build_mailbox(messages)] if messages else []),
        ("demo", [m.raw for m in generate_mailbox(300)]),
    ]
    if with_tests:
        sources.append(("tests", test_messages()))
    for name, raws in sources:
        for index, raw in enumerate(raws):
            yield f"{name}:{index}", raw
            # Big messages are mutilated too, but rarely: the point is variety, not volume.
            if len(raw) < 200_000 or index % 10 == 0:
                for variant, broken in enumerate(mutilated(raw, rng)):
                    yield f"{name}:{index}:m{variant}", broken


def _result(raw: bytes) -> dict[str, object]:
    try:
        return {"parsed": asdict(parse_message(raw))}
    except Exception as exc:  # the contract says it never raises; a dump must still finish
        return {"raised": type(exc).__name__}


def _bytes_digest(value: object) -> str:
    """Attachment contents, compared by digest: a dump stays small and still shows any change."""
    if isinstance(value, bytes):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    raise TypeError(f"cannot dump {type(value).__name__}")


def dump(out: Path, messages: int, with_tests: bool) -> int:
    count = 0
    with open(out, "w", encoding="utf-8") as handle:
        for label, raw in corpus(messages, with_tests):
            line = {"label": label, "raw": hashlib.sha256(raw).hexdigest()[:16], **_result(raw)}
            handle.write(json.dumps(line, ensure_ascii=False, sort_keys=True, default=_bytes_digest) + "\n")
            count += 1
    print(f"{count} parse results written to {out}", file=sys.stderr)
    return 0


def compare(before: Path, after: Path, show: int = 5) -> int:
    """Exit status 0 when both dumps hold the same results for the same inputs, else 1."""
    with open(before, encoding="utf-8") as a, open(after, encoding="utf-8") as b:
        old, new = [json.loads(line) for line in a], [json.loads(line) for line in b]
    if [(o["label"], o["raw"]) for o in old] != [(n["label"], n["raw"]) for n in new]:
        print("the two dumps were made from different corpora", file=sys.stderr)
        return 1
    differing = [(o, n) for o, n in zip(old, new) if o != n]
    for o, n in differing[:show]:
        print(f"-- {o['label']}")
        for key in sorted(set(o.get("parsed", {})) | set(n.get("parsed", {}))):
            if o.get("parsed", {}).get(key) != n.get("parsed", {}).get(key):
                print(f"   {key}: {str(o.get('parsed', {}).get(key))[:300]!r}")
                print(f"   {' ' * len(key)}  {str(n.get('parsed', {}).get(key))[:300]!r}")
        if "raised" in o or "raised" in n:
            print(f"   raised: {o.get('raised')} -> {n.get('raised')}")
    print(f"{len(old)} messages compared, {len(differing)} differ")
    return 1 if differing else 0


def timing(messages: int, rounds: int = 3) -> int:
    """CPU per message for parsing, element building and JSON encoding, best of ``rounds``."""
    from futurnal.element.build import build_element
    from futurnal.imap.fetched import FetchedMessage

    raws = [m.raw for m in build_mailbox(messages)]
    fetched = [FetchedMessage(uid=i + 1, raw=raw, flags=(), internal_date=None, size=len(raw))
               for i, raw in enumerate(raws)]
    best: dict[str, float] = {}
    for _ in range(rounds):
        started = time.process_time()
        parsed = [parse_message(raw) for raw in raws]
        parse_s = time.process_time() - started
        started = time.process_time()
        elements = [build_element(p, f, mailbox="m", folder="INBOX", uidvalidity=1) for p, f in zip(parsed, fetched)]
        element_s = time.process_time() - started
        started = time.process_time()
        for element in elements:
            json.dumps(element, ensure_ascii=False, sort_keys=True).encode()
        json_s = time.process_time() - started
        for key, value in (("parse", parse_s), ("element", element_s), ("json", json_s)):
            best[key] = min(best.get(key, value), value)
    for key, value in best.items():
        print(f"{key:8s} {value * 1000 / len(raws):7.3f} ms/msg  ({value:.2f} s for {len(raws)})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump")
    d.add_argument("out", type=Path)
    d.add_argument("--messages", type=int, default=2000)
    d.add_argument("--tests", action="store_true", help="also the messages the parser unit tests build")
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    t = sub.add_parser("time")
    t.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args(argv)
    if args.command == "dump":
        return dump(args.out, args.messages, args.tests)
    if args.command == "compare":
        return compare(args.before, args.after)
    return timing(args.messages)


if __name__ == "__main__":
    sys.exit(main())
