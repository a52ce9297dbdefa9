"""Check an audit export directory offline (standard library + ``cryptography`` only).

An export (``ticketflow audit export DIR``) holds:

* ``manifest.json``: ``format``, ``scope`` (``ticket``, ``from``, ``to``), ``complete_log`` (every
  event of the log up to the checkpoint), ``checkpoint`` (the seq the events are proven against),
  ``events`` (count) and ``files`` (SHA-256 of each file, against accidental damage only);
* ``events.ndjson``: one event a line in log order: ``position``, ``ordinal`` (leaf index),
  ``originator_id``, ``version``, ``topic``, ``state`` (base64 of the stored bytes), ``previous``
  and ``hash`` (hex), and, unless ``complete_log``, ``proof`` (hex list: RFC 9162 inclusion proof of
  ``leaf(hash)`` at ``ordinal`` in the checkpoint's tree);
* ``checkpoints.ndjson``: ``seq``, ``body`` (the signed JSON text), ``signature`` (hex);
* ``keys.json``: the key history ``[{key_id, public_key}]`` (raw Ed25519, hex), oldest first;
* ``heads.ndjson`` (single-stream exports): ``originator_id``, ``version``, ``hash``, ``index``,
  ``proof``: the stream's head entry in the checkpoint's heads tree, proving its last version.

The hash formats are specified in :mod:`ticketflow_verify.chain`.

**Trust.** Everything above can be re-made by whoever holds the export: new events, new
checkpoints, a new ``keys.json``. So "intact" means only *self-consistent* until the proof
reaches something the auditor holds out of band: the desk's public key fingerprint
(``ticketflow audit export`` prints it) or an anchor file (checkpoints the auditor kept).
:func:`check_export` says which: the proof is trusted when the checkpoint the events are
proven against is signed by a trusted key or a key it announced, or when the newest anchored
checkpoint is in the export unchanged at or before it. An export whose checkpoints end before
the newest anchored one is a rollback; one that has a different checkpoint under that number
is a fork: both are tampering.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ticketflow_verify.chain import (
    FORMATS, Checkpoint, Frontier, check_signatures, checkpoint_format, event_hash, fingerprint, genesis, head_leaf, heads_levels, leaf,
    root_from_proof, root_of,
)

FILES = ("events.ndjson", "checkpoints.ndjson", "keys.json", "heads.ndjson")


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def load_checkpoints(directory: Path) -> list[Checkpoint]:
    return [Checkpoint(int(c["seq"]), c["body"].encode(), bytes.fromhex(c["signature"]))
            for c in _lines(directory / "checkpoints.ndjson")]


class UsageError(Exception):
    """The verifier was pointed at something that is not an export or an anchor file."""


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    trusted: bool = False
    trust: str = ""  # why the proof is (or is not) trusted
    manifest: dict[str, Any] = field(default_factory=dict)
    #: Whether the export was proven complete (the whole log, or a ticket's whole history through
    #: the signed heads); a time range or a partial export proves each event, not that none is missing.
    complete: bool = False

    @property
    def intact(self) -> bool:
        return not self.problems


def read_anchor(path: Path) -> list[Checkpoint]:
    """The checkpoints of an anchor file (one JSON object a line: ``seq``, ``body``, ``signature``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"anchor file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"anchor file {path} cannot be read: {exc}") from None
    anchored = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            cp = Checkpoint(int(entry["seq"]), str(entry["body"]).encode(), bytes.fromhex(entry["signature"]))
            cp.fields  # noqa: B018 - the body must be JSON
        except (ValueError, KeyError, TypeError, OverflowError, AttributeError):
            raise UsageError(f"anchor file {path} line {number} is not a checkpoint (seq, body, signature)") from None
        if not isinstance(cp.fields, dict):
            raise UsageError(f"anchor file {path} line {number} is not a checkpoint (its body is not a JSON object)")
        anchored.append(cp)
    if not anchored:
        raise UsageError(f"anchor file {path} holds no checkpoint")
    return anchored


def check_export(directory: Path, keys: Sequence[str] = (), anchor: Sequence[Checkpoint] = ()) -> Verdict:
    """Check an export and say whether its proof reaches a trust root: ``keys`` (fingerprints as
    :func:`ticketflow_verify.chain.normalise_fingerprint` gives them) and/or ``anchor``."""
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory")
    if not (directory / "manifest.json").is_file():
        raise UsageError(f"{directory} is not an audit export (no manifest.json); make one with: ticketflow audit export DIR")
    verdict = Verdict(problems=verify_export(directory))
    try:
        return _judge_trust(verdict, directory, keys, anchor)
    except MALFORMED as exc:
        verdict.problems.append(f"export unreadable: {type(exc).__name__}: {exc}")
        return verdict


#: What a malformed (tampered) export raises while it is read: reported as tampering, never a crash.
MALFORMED = (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError)


def _judge_trust(verdict: Verdict, directory: Path, keys: Sequence[str], anchor: Sequence[Checkpoint]) -> Verdict:
    verdict.manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    history = {k["key_id"]: k["public_key"] for k in json.loads((directory / "keys.json").read_text(encoding="utf-8"))}
    checkpoints = load_checkpoints(directory)
    scope = verdict.manifest.get("scope") or {}
    ranged = bool(scope.get("from") or scope.get("to"))
    verdict.complete = not verdict.problems and (
        bool(verdict.manifest.get("complete_log")) or (bool(scope.get("ticket")) and not ranged))
    by_seq = {cp.seq: cp for cp in checkpoints}
    target = by_seq.get(int(verdict.manifest.get("checkpoint", 0) or 0))
    if anchor:
        newest = max(anchor, key=lambda cp: cp.seq)
        ours = by_seq.get(newest.seq)
        last = max(by_seq, default=0)
        if ours is None and last < newest.seq:
            verdict.problems.insert(0, f"ROLLBACK: the export's checkpoints end at #{last}, older than checkpoint "
                                       f"#{newest.seq} (tree size {newest.fields.get('tree_size')}) in your anchor file")
        elif ours is None or (ours.body, ours.signature) != (newest.body, newest.signature):
            verdict.problems.insert(0, f"FORK: checkpoint #{newest.seq} in the export differs from the one in your anchor file")
        elif forked := [cp.seq for cp in anchor if (mine := by_seq.get(cp.seq)) is not None
                        and (mine.body, mine.signature) != (cp.body, cp.signature)]:
            verdict.problems.insert(0, f"FORK: checkpoint #{forked[0]} in the export differs from the one in your anchor file")
        elif target is not None and newest.seq <= target.seq:
            verdict.trusted = True
            verdict.trust = f"anchored checkpoint #{newest.seq} is in the export unchanged"
        else:
            verdict.problems.insert(0, f"ROLLBACK: the events are proven against checkpoint"
                                       f" #{target.seq if target else '?'}, older than checkpoint #{newest.seq} in your anchor file")
    if keys and target is not None and not verdict.trusted:
        wanted = set(keys)
        signer = next((cp for cp in checkpoints if cp.seq <= target.seq and _key_matches(cp, history, wanted)), None)
        if signer is not None:
            verdict.trusted = True
            verdict.trust = f"checkpoint #{signer.seq} is signed by the trusted key {signer.fields.get('key_id')}"
        else:
            verdict.trust = "no checkpoint up to the proving one is signed by a key you trust"
            signers = sorted({fingerprint(bytes.fromhex(history[k])) for k in
                              {cp.fields.get("key_id") for cp in checkpoints} if k in history})
            verdict.problems.insert(0, "UNTRUSTED KEY: the checkpoints are signed by " + (", ".join(signers) or "no known key")
                                    + ", not by the key you trust (re-signed?)")
    return verdict


def _key_matches(cp: Checkpoint, history: dict[str, str], wanted: set[str]) -> bool:
    public = history.get(str(cp.fields.get("key_id")))
    return public is not None and fingerprint(bytes.fromhex(public)) in wanted


def verify_export(directory: Path, trusted_key: str | None = None) -> list[str]:
    """Every problem found, the first one first (empty: the export is intact)."""
    try:
        return _verify_export(directory, trusted_key)
    except MALFORMED as exc:
        return [f"export unreadable: {type(exc).__name__}: {exc}"]


def _verify_export(directory: Path, trusted_key: str | None) -> list[str]:
    problems: list[str] = []
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        keys = {k["key_id"]: k["public_key"] for k in json.loads((directory / "keys.json").read_text(encoding="utf-8"))}
        checkpoints = load_checkpoints(directory)
    except (OSError, ValueError, KeyError) as exc:
        return [f"export unreadable: {exc}"]
    sizes = [cp.fields.get("tree_size", -1) for cp in checkpoints]
    for i, cp in enumerate(checkpoints):
        if cp.seq != i + 1:
            problems.append(f"checkpoint #{cp.seq}: expected #{i + 1} (a checkpoint is missing or reordered)")
            break
        if i and sizes[i] < sizes[i - 1]:
            problems.append(f"checkpoint #{cp.seq}: tree size {sizes[i]} shrinks from {sizes[i - 1]}")
            break
    bad_signature = check_signatures(checkpoints, dict(keys), trusted_key)
    if bad_signature:
        problems.append(bad_signature)
    by_seq = {cp.seq: cp for cp in checkpoints}
    target = by_seq.get(int(manifest.get("checkpoint", 0)))
    if target is None:
        return problems + [f"checkpoint #{manifest.get('checkpoint')} named by the manifest is missing"]
    fields = target.fields
    size, root = int(fields["tree_size"]), bytes.fromhex(fields["root"])
    complete = bool(manifest.get("complete_log"))
    ticket = (manifest.get("scope") or {}).get("ticket")
    ranged = bool((manifest.get("scope") or {}).get("from") or (manifest.get("scope") or {}).get("to"))
    roots = {int(cp.fields["tree_size"]): cp for cp in checkpoints}
    frontier = Frontier()
    heads: dict[str, tuple[int, bytes]] = {}
    last_position = last_ordinal = -1
    count = 0
    for number, e in enumerate(_lines(directory / "events.ndjson"), start=1):
        count += 1
        oid, version, position, ordinal = e["originator_id"], int(e["version"]), int(e["position"]), int(e["ordinal"])
        where = f"event at position {position} ({oid} v{version}, line {number})"
        if ticket and oid != ticket:
            problems.append(f"{where}: not an event of ticket {ticket}, the export's scope")
        if position <= last_position or ordinal <= last_ordinal:
            problems.append(f"{where}: out of log order (after position {last_position})")
        last_position, last_ordinal = position, ordinal
        if oid in heads:
            previous_version, previous = heads[oid]
        elif version == 1 or (ticket and not ranged) or complete:
            previous_version, previous = 0, genesis(oid)
        else:  # a range export starts mid-stream: the proof authenticates ``previous`` with the hash
            previous_version, previous = version - 1, bytes.fromhex(e["previous"])
        if version != previous_version + 1:
            problems.append(f"{where}: follows v{previous_version} of its stream (events missing, inserted or reordered)")
        state = base64.b64decode(e["state"])
        h = event_hash(oid, version, e["topic"], state, previous)
        if h.hex() != e["hash"]:
            problems.append(f"{where}: stored bytes do not match the sealed hash")
        heads[oid] = (version, bytes.fromhex(e["hash"]) if h.hex() != e["hash"] else h)
        if complete:
            if ordinal != frontier.size:
                problems.append(f"{where}: leaf {ordinal} where leaf {frontier.size} was expected (an event is missing or inserted)")
            frontier.append(leaf(h))
            cp = roots.get(frontier.size)
            if cp is not None and bytes.fromhex(cp.fields["root"]) != frontier.root():
                problems.append(f"checkpoint #{cp.seq} (tree size {frontier.size}): root does not match the events up to position {position}")
        else:
            proof = [bytes.fromhex(p) for p in e.get("proof", [])]
            if ordinal >= size or root_from_proof(ordinal, size, leaf(h), proof) != root:
                problems.append(f"{where}: not included in checkpoint #{target.seq} (inclusion proof fails)")
    if manifest.get("events") != count:
        problems.append(f"events.ndjson has {count} events, the manifest says {manifest.get('events')} (truncated or padded)")
    if complete:
        if frontier.size != size:
            problems.append(f"the log has {frontier.size} events but checkpoint #{target.seq} covers {size}: truncated or padded")
        for cp in checkpoints:
            if int(cp.fields["tree_size"]) > frontier.size:
                problems.append(f"checkpoint #{cp.seq} covers {cp.fields['tree_size']} events, beyond the log's {frontier.size}")
                break
        known = checkpoint_format(fields) in FORMATS  # else check_signatures named the format
        if known and frontier.size == size and root_of(heads_levels(  # heads: in log order, as read
                heads, format=checkpoint_format(fields))[1]).hex() != fields.get("heads_root"):
            problems.append(f"checkpoint #{target.seq}: heads root does not match the streams' last events")
    elif ticket and not ranged:
        if ticket not in heads:
            problems.append(f"the export holds no event of ticket {ticket}, its scope")
        problems.extend(_check_heads(directory, heads, target))
    problems.extend(_check_files(directory, manifest))
    return problems


def _check_heads(directory: Path, heads: dict[str, tuple[int, bytes]], target: Checkpoint) -> list[str]:
    """A single-stream export is complete when the checkpoint's heads tree records its last event."""
    problems = []
    fields = target.fields
    entries = {h["originator_id"]: h for h in _lines(directory / "heads.ndjson")}
    for oid, (version, h) in heads.items():
        entry = entries.get(oid)
        if entry is None:
            problems.append(f"stream {oid}: no head entry in heads.ndjson")
            continue
        proof = [bytes.fromhex(p) for p in entry["proof"]]
        claimed = head_leaf(oid, int(entry["version"]), bytes.fromhex(entry["hash"]))
        if root_from_proof(int(entry["index"]), int(fields["heads_count"]), claimed, proof) != bytes.fromhex(fields["heads_root"]):
            problems.append(f"stream {oid}: head entry not in checkpoint #{target.seq} (heads proof fails)")
        elif int(entry["version"]) != version or bytes.fromhex(entry["hash"]) != h:
            problems.append(
                f"stream {oid}: export ends at v{version} but checkpoint #{target.seq} records v{entry['version']}"
                " (events missing at the end)"
            )
    return problems


def _check_files(directory: Path, manifest: dict[str, Any]) -> list[str]:
    problems = []
    for name, digest in (manifest.get("files") or {}).items():
        if name not in FILES:
            problems.append(f"manifest: {name!r} is not a file of an export")
            continue
        path = directory / name
        if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            problems.append(f"{name}: differs from the manifest's digest")
    return problems
