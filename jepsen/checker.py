#!/usr/bin/env python3
"""Check a skiff history for the anomalies of a Kafka-like log.

    python3 jepsen/checker.py history.jsonl [--out result.json]
        [--min-acks N] [--min-faults N] [--require-drain]

Exit status: 0 valid, 1 anomalies found, 2 vacuous (too few acknowledged
produces, no fault injected, or no final drain when one is required), 3 the
history cannot be read.

The analysis follows Jepsen's kafka workload (jepsen/tests/kafka.clj) as
summarised in JEPSEN.md. Every produced value is unique and the server returns
offsets, so the order of the log is observable: every check is a sort or a
sweep, never a linearizability search. The whole history is held in memory.

History: one JSON object per line
    {"process": P, "type": "invoke"|"ok"|"fail"|"info", "f": F,
     "value": {...}, "time": monotonic ns}
A process has at most one operation in flight: a completion (ok, fail, info)
closes the last invoke of the same process. An invoke never closed counts as
info (indeterminate). A completion's value repeats and extends its invoke's.

Client operations (f and value fields):
  produce   topic, partition, value (a unique string), key (idempotency key or
            null), attempt; ok adds offset, duplicate. A retry after an
            indeterminate outcome is a new operation with the same value and key.
  consume   topic, partition, group, offset (null = resume after the group's
            committed offset), limit, continue (true when offset is the
            next_offset of this process's previous read of that partition and
            group), final (a read of the final drain); ok adds
            messages [[offset, value], ...], next_offset, high_watermark
            (exclusive: the first offset not yet visible), log_start,
            committed_offset (null when the group never committed). A fail may
            carry log_start (a read below it).
  commit    topic, partition, group, offset (the last offset processed); a
            fail may carry current (the committed offset the server reported).
  delete-before  topic, partition, before_offset.
  topic-info     ok value: topic, partitions [{partition, log_start,
                 high_watermark}].
Nemesis operations have process "nemesis"; a completion whose value carries
"fault": KIND counts as one injected fault of that kind.

Definitions (JEPSEN.md). log[p][o] is the set of values seen at offset o of
partition p: from acknowledged produces and from every read (an indeterminate
produce whose value is read thereby counts as having happened). The non-empty
offsets of p, in order, give each its dense index. Each underlying fact is
reported once: a value missing from reads is a lost-write when some read went
past it and unseen otherwise; a value stored twice is an idempotency anomaly
when its key was sent more than once and a duplicate otherwise; a backwards
acknowledgement from one process is a nonmonotonic-send and from two processes
a real-time violation; the final drain's high watermark is judged by unseen,
the high-watermark check covers the reads made while the test ran.
"""

import argparse
import bisect
import collections
import json
import sys

INF = float("inf")

# Every kind the checker can report, in the order they are printed.
ANOMALY_KINDS = (
    "inconsistent-offsets",
    "duplicate",
    "aborted-read",
    "phantom-read",
    "lost-write",
    "unseen",
    "gap",
    "poll-skip",
    "nonmonotonic-poll",
    "nonmonotonic-send",
    "real-time-order",
    "high-watermark-order",
    "committed-offset-regression",
    "commit-resume",
    "idempotency",
    "log-start-regression",
    "incomplete-drain",
)

EXPLAIN = {
    "inconsistent-offsets": "more than one value at one offset",
    "duplicate": "one value at more than one offset (its produce was sent once)",
    "aborted-read": "a value whose produce definitely failed was read",
    "phantom-read": "a read returned a value no client ever produced",
    "lost-write": "an acknowledged value below the highest offset any read reached was never read",
    "unseen": "after the final drain, an acknowledged value was never read",
    "gap": "an offset below the final high watermark holds no value",
    "poll-skip": "a read skipped a non-empty offset (within a read, at its start, or since this consumer's previous read)",
    "nonmonotonic-poll": "a read went backwards (within a read, below its requested offset, or behind this consumer's previous read)",
    "nonmonotonic-send": "a later produce of one process got a lower offset in the same partition",
    "real-time-order": "produce A was acknowledged before produce B was invoked, yet offset(A) > offset(B)",
    "high-watermark-order": "a produce was acknowledged before a read was invoked, yet the read's high watermark is not past its offset",
    "committed-offset-regression": "a group's committed offset moved backwards in real time",
    "commit-resume": "a consume without offset did not resume right after the committed offset it reported",
    "idempotency": "one idempotency key got different offsets, or its value was stored twice",
    "log-start-regression": "a partition's log start moved backwards, or a read below the log start succeeded",
    "incomplete-drain": "the final drain did not read a partition from its log start to its high watermark",
}


# ---------------------------------------------------------------- history


class Op:
    """One operation: its invoke line and its completion line (if any)."""

    __slots__ = ("process", "f", "inv", "cmp", "line", "cline", "value", "type", "t0", "t1")

    def __init__(self, inv, line, cmp=None, cline=None):
        self.inv, self.line, self.cmp, self.cline = inv, line, cmp, cline
        first = inv if inv is not None else cmp
        self.process = first.get("process")
        self.f = first.get("f")
        self.t0 = first.get("time", 0)
        self.finish(cmp, cline)

    def finish(self, cmp, cline):
        self.cmp, self.cline = cmp, cline
        self.type = cmp.get("type", "info") if cmp is not None else "info"
        self.t1 = cmp.get("time", INF) if cmp is not None else INF
        value = {}
        for part in (self.inv, cmp):
            if part is not None and isinstance(part.get("value"), dict):
                value.update(part["value"])
            elif part is not None and part.get("value") is not None:
                value["value"] = part["value"]
        self.value = value

    def brief(self):
        """A small dict naming the operation, for reports (reads lose their messages)."""
        v = dict(self.value)
        msgs = v.pop("messages", None)
        if msgs is not None:
            offs = [m[0] for m in msgs]
            v["count"] = len(offs)
            if offs:
                v["first"], v["last"] = offs[0], offs[-1]
        out = {"line": self.line, "process": self.process, "type": self.type, "f": self.f,
               "time": self.t0, "value": v}
        if self.cline is not None and self.cline != self.line:
            out["complete_line"] = self.cline
            out["complete_time"] = self.t1
        return out


def load_history(path):
    """Read a JSONL history; blank lines are skipped, a bad line is an error."""
    out = []
    with open(path, "r", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append((n, json.loads(line)))
            except ValueError as e:
                raise ValueError("%s:%d: not JSON: %s" % (path, n, e))
    return out


def pair_ops(lines):
    """Pair invokes with completions per process. lines: [(line_no, dict)]."""
    ops, pending = [], {}
    for n, ev in lines:
        p = json.dumps(ev.get("process"), sort_keys=True)
        t = ev.get("type")
        if t == "invoke":
            if p in pending:  # never completed: indeterminate
                pending.pop(p)
            op = Op(ev, n)
            op.finish(None, None)
            pending[p] = op
            ops.append(op)
        elif t in ("ok", "fail", "info"):
            op = pending.pop(p, None)
            if op is not None and op.f == ev.get("f", op.f):
                op.finish(ev, n)
            else:
                ops.append(Op(None, n, ev, n))
    return ops


def messages_of(op):
    """[(offset, value)] of a read, accepting [o, v] pairs or {"offset","value"} dicts."""
    out = []
    for m in op.value.get("messages") or ():
        if isinstance(m, dict):
            out.append((int(m["offset"]), m.get("value")))
        else:
            out.append((int(m[0]), m[1]))
    return out


def pk_of(v):
    return "%s/%s" % (v.get("topic", "-"), v.get("partition", 0))


def as_offset(x):
    """A committed offset or log start: null (never committed) is -1."""
    return -1 if x is None else int(x)


# ---------------------------------------------------------------- report


class Report:
    def __init__(self, detail_max):
        self.detail_max = detail_max
        self.found = collections.OrderedDict((k, []) for k in ANOMALY_KINDS)
        self.count = collections.Counter()

    def add(self, kind, ops, **fields):
        self.count[kind] += 1
        if len(self.found[kind]) < self.detail_max:
            entry = {"kind": kind}
            entry.update(fields)
            seen, briefs = set(), []
            for op in ops:
                if op is not None and id(op) not in seen:
                    seen.add(id(op))
                    briefs.append(op.brief())
            entry["ops"] = briefs
            self.found[kind].append(entry)


# ---------------------------------------------------------------- model


class Model:
    """Everything derived from the history that the checks share."""

    def __init__(self, ops):
        self.ops = ops
        self.client = [o for o in ops if o.process != "nemesis"]
        self.produces = [o for o in self.client if o.f == "produce"]
        self.reads = [o for o in self.client if o.f in ("consume", "poll") and o.type == "ok"]
        self.log = collections.defaultdict(lambda: collections.defaultdict(dict))
        self.where = collections.defaultdict(dict)  # value -> {(pk, offset): [ops]}
        self.read_values = set()
        self.reached = {}  # pk -> highest offset any read delivered
        self.by_value = collections.defaultdict(list)  # value -> produce attempts
        self.by_key = collections.defaultdict(list)  # idempotency key -> produce attempts
        self.deleted_below = collections.defaultdict(lambda: -1)
        self._index()
        self.offsets = {pk: sorted(o for o, vals in log.items() if vals)
                        for pk, log in self.log.items()}

    def _see(self, pk, offset, value, op):
        self.log[pk][offset].setdefault(value, []).append(op)
        self.where[value].setdefault((pk, offset), []).append(op)

    def _index(self):
        for op in self.produces:
            v = op.value
            self.by_value[v.get("value")].append(op)
            if v.get("key") is not None:
                self.by_key[v["key"]].append(op)
            if op.type == "ok" and v.get("offset") is not None:
                self._see(pk_of(v), int(v["offset"]), v.get("value"), op)
        for op in self.reads:
            pk = pk_of(op.value)
            for off, val in messages_of(op):
                self._see(pk, off, val, op)
                self.read_values.add(val)
                if off > self.reached.get(pk, -1):
                    self.reached[pk] = off
        for op in self.client:
            if op.f == "delete-before" and op.type != "fail":
                pk = pk_of(op.value)
                b = int(op.value.get("before_offset", 0))
                self.deleted_below[pk] = max(self.deleted_below[pk], b)

    def nonempty_between(self, pk, lo, hi):
        """Non-empty offsets o with lo <= o < hi."""
        offs = self.offsets.get(pk, [])
        return offs[bisect.bisect_left(offs, lo):bisect.bisect_left(offs, hi)]

    def value_fate(self, value):
        """'ok' when some attempt was acknowledged, 'info' when one may have
        happened, 'fail' when every attempt definitely failed, None if unknown."""
        types = {op.type for op in self.by_value.get(value, ())}
        for t in ("ok", "info", "fail"):
            if t in types:
                return t
        return None


# ---------------------------------------------------------------- checks


def check_offsets(m, r):
    """inconsistent-offsets, duplicate, idempotency, aborted-read, phantom-read."""
    for pk, log in m.log.items():
        for off in sorted(log):
            vals = log[off]
            if len(vals) > 1:
                ops = [op for lst in vals.values() for op in lst[:3]]
                r.add("inconsistent-offsets", ops, partition=pk, offset=off,
                      values=sorted(map(str, vals)))
    idem = collections.OrderedDict()  # key -> [reasons, ops]
    for key, attempts in m.by_key.items():
        acks = {(pk_of(a.value), a.value.get("offset")) for a in attempts
                if a.type == "ok" and a.value.get("offset") is not None}
        if len(acks) > 1:
            idem[key] = [["acks-disagree"], [a for a in attempts if a.type == "ok"]]
    for val, locs in m.where.items():
        if len(locs) < 2:
            continue
        attempts = m.by_value.get(val, [])
        keys = {a.value.get("key") for a in attempts} - {None}
        ops = [op for lst in locs.values() for op in lst[:2]]
        where = sorted("%s@%d" % (pk, o) for pk, o in locs)
        retried = [k for k in keys if len(m.by_key[k]) > 1]
        if retried:
            entry = idem.setdefault(retried[0], [[], []])
            entry[0].append("stored-twice")
            entry[1].extend(attempts + ops)
            entry.append(where)
        else:
            r.add("duplicate", attempts + ops, value=val, at=where)
    for key, entry in idem.items():
        fields = {"key": key, "reasons": entry[0]}
        if len(entry) > 2:
            fields["at"] = entry[2]
        r.add("idempotency", entry[1], **fields)
    for val in sorted(m.read_values, key=str):
        fate = m.value_fate(val)
        locs = m.where.get(val, {})
        readers = [op for lst in locs.values() for op in lst if op.f != "produce"][:3]
        if fate == "fail":
            r.add("aborted-read", m.by_value[val] + readers, value=val,
                  at=sorted("%s@%d" % loc for loc in locs))
        elif fate is None:
            r.add("phantom-read", readers, value=val, at=sorted("%s@%d" % loc for loc in locs))


def final_drain(m):
    """pk -> (complete, log_start, high_watermark, ops) for partitions with final reads."""
    finals = collections.defaultdict(list)
    for op in m.reads:
        if op.value.get("final"):
            finals[pk_of(op.value)].append(op)
    out = {}
    for pk, ops in finals.items():
        ops.sort(key=lambda o: o.t0)
        last = ops[-1].value
        ls, hw = as_offset(last.get("log_start", 0)), int(last.get("high_watermark", 0))
        spans = []
        for op in ops:
            start = op.value.get("offset")
            end = op.value.get("next_offset")
            if start is None or end is None:
                continue
            spans.append((int(start), int(end)))
        covered = max(ls, 0)
        for s, e in sorted(spans):
            if s <= covered:
                covered = max(covered, e)
        out[pk] = (covered >= hw, max(ls, 0), hw, ops)
    return out


def check_missing(m, r, drains):
    """lost-write, unseen, gap, incomplete-drain."""
    if drains:  # a drain that left out a partition holding acknowledged values
        acked = {}
        for op in m.produces:
            if op.type == "ok":
                acked.setdefault(pk_of(op.value), op)
        for pk in sorted(set(acked) - set(drains)):
            r.add("incomplete-drain", [acked[pk]], partition=pk, why="never read by the drain")
    for pk, (complete, ls, hw, ops) in sorted(drains.items()):
        if not complete:
            r.add("incomplete-drain", ops[-3:], partition=pk, log_start=ls, high_watermark=hw)
            continue
        offs = m.offsets.get(pk, [])
        holes, prev = [], ls - 1
        for o in offs[bisect.bisect_left(offs, ls):bisect.bisect_left(offs, hw)] + [hw]:
            if o > prev + 1:
                holes.append((prev + 1, o))
            prev = o
        for lo, hi in holes:
            r.add("gap", ops[-1:], partition=pk, offsets=[lo, hi - 1], missing=hi - lo)
    for op in m.produces:
        if op.type != "ok" or op.value.get("offset") is None:
            continue
        val = op.value.get("value")
        if val in m.read_values:
            continue
        pk, off = pk_of(op.value), int(op.value["offset"])
        if off < m.deleted_below[pk]:
            continue  # removed by delete-before before anyone read it
        if off <= m.reached.get(pk, -1):
            r.add("lost-write", [op], partition=pk, offset=off, value=val,
                  reached=m.reached[pk])
        elif pk in drains and drains[pk][0]:
            r.add("unseen", [op] + drains[pk][3][-1:], partition=pk, offset=off, value=val,
                  high_watermark=drains[pk][2])


def check_polls(m, r):
    """poll-skip, nonmonotonic-poll and commit-resume, one read at a time."""
    position = {}  # (process, pk, group) -> (last delivered offset, op)
    for op in sorted(m.reads, key=lambda o: (str(o.process), o.t0)):
        v, pk = op.value, pk_of(op.value)
        msgs = messages_of(op)
        ls = max(as_offset(v.get("log_start")), 0)
        consumer = (json.dumps(op.process), pk, v.get("group"))
        prev = position.get(consumer)
        if msgs:
            check_read_start(m, r, op, pk, msgs[0][0], ls, prev if v.get("continue") else None)
        for (a, _), (b, _) in zip(msgs, msgs[1:]):
            if b <= a:
                r.add("nonmonotonic-poll", [op], partition=pk, offsets=[a, b], where="within")
            else:
                skipped = m.nonempty_between(pk, max(a + 1, ls), b)
                if skipped:
                    r.add("poll-skip", [op], partition=pk, offsets=[a, b],
                          skipped=skipped[:20], where="within")
        if msgs:
            position[consumer] = (msgs[-1][0], op)
        elif isinstance(v.get("next_offset"), int):
            # An empty read still moves the consumer: it now stands before
            # next_offset (a jump to the high watermark, then a continue from
            # there, is not a skip of what lay between).
            position[consumer] = (v["next_offset"] - 1, op)


def check_read_start(m, r, op, pk, first, ls, prev):
    """The first offset a read delivered, against where it should have started."""
    v = op.value
    if prev is not None:
        last, prev_op = prev
        if first <= last:
            r.add("nonmonotonic-poll", [prev_op, op], partition=pk, offsets=[last, first],
                  where="since previous read")
        else:
            skipped = m.nonempty_between(pk, max(last + 1, ls), first)
            if skipped:
                r.add("poll-skip", [prev_op, op], partition=pk, offsets=[last, first],
                      skipped=skipped[:20], where="since previous read")
        return
    if v.get("offset") is None:
        committed = as_offset(v.get("committed_offset"))
        start = committed + 1
        skipped = m.nonempty_between(pk, max(start, ls), first)
        if first < start or skipped:
            r.add("commit-resume", [op], partition=pk, group=v.get("group"),
                  committed_offset=committed, first=first, skipped=skipped[:20])
        return
    start = int(v["offset"])
    if first < start:
        r.add("nonmonotonic-poll", [op], partition=pk, offsets=[start, first],
              where="below requested offset")
        return
    skipped = m.nonempty_between(pk, max(start, ls), first)
    if skipped:
        r.add("poll-skip", [op], partition=pk, offsets=[start, first], skipped=skipped[:20],
              where="at start")


def value_offsets(m):
    """value -> (pk, offset, process, first invoke, first ack time or INF, ack op, ops)."""
    out = {}
    for val, attempts in m.by_value.items():
        locs = m.where.get(val)
        if not locs or len(locs) != 1:
            continue  # never seen, or already a duplicate / idempotency anomaly
        (pk, off), = locs.keys()
        t_inv = min(a.t0 for a in attempts)
        acks = [a for a in attempts if a.type == "ok"]
        ack = min(acks, key=lambda a: a.t1) if acks else None
        out[val] = (pk, off, json.dumps(attempts[0].process), t_inv,
                    ack.t1 if ack else INF, ack, attempts)
    return out


def check_send_order(m, r):
    """nonmonotonic-send (same process) and real-time-order (different processes)."""
    vals = value_offsets(m)
    by_pk = collections.defaultdict(list)
    for val, rec in vals.items():
        by_pk[rec[0]].append((val, rec))
    for pk, items in by_pk.items():
        acked = sorted((rec for _, rec in items if rec[5] is not None), key=lambda x: x[4])
        invoked = sorted((rec for _, rec in items), key=lambda x: x[3])
        best = None   # acknowledged record with the highest offset so far
        other = None  # highest from a process other than best's
        own = {}      # process -> highest acknowledged record of that process
        i = 0
        for b in invoked:
            while i < len(acked) and acked[i][4] < b[3]:
                a = acked[i]
                i += 1
                if own.get(a[2]) is None or a[1] > own[a[2]][1]:
                    own[a[2]] = a
                if best is None or a[1] > best[1]:
                    if best is not None and best[2] != a[2]:
                        other = best
                    elif other is not None and other[2] == a[2]:
                        other = None
                    best = a
                elif a[2] != best[2] and (other is None or a[1] > other[1]):
                    other = a
            mine = own.get(b[2])
            if mine is not None and mine[1] > b[1]:
                r.add("nonmonotonic-send", [mine[5]] + b[6], partition=pk,
                      offsets=[mine[1], b[1]])
            witness = best if best is not None and best[2] != b[2] else other
            if witness is not None and witness[1] > b[1]:
                r.add("real-time-order", [witness[5]] + b[6], partition=pk,
                      offsets=[witness[1], b[1]])


def check_high_watermark(m, r):
    """A read invoked after an acknowledgement must report a high watermark past it."""
    acked = collections.defaultdict(list)
    for op in m.produces:
        if op.type == "ok" and op.value.get("offset") is not None:
            acked[pk_of(op.value)].append((op.t1, int(op.value["offset"]), op))
    reads = collections.defaultdict(list)
    for op in m.reads:
        if not op.value.get("final") and op.value.get("high_watermark") is not None:
            reads[pk_of(op.value)].append(op)
    for pk, rs in reads.items():
        acks = sorted(acked.get(pk, []), key=lambda x: x[0])
        i, best = 0, None
        for op in sorted(rs, key=lambda o: o.t0):
            while i < len(acks) and acks[i][0] < op.t0:
                if best is None or acks[i][1] > best[1]:
                    best = acks[i]
                i += 1
            hw = int(op.value["high_watermark"])
            if best is not None and hw <= best[1]:
                r.add("high-watermark-order", [best[2], op], partition=pk, offset=best[1],
                      high_watermark=hw)


def regression_sweep(obs, on_regression):
    """obs: [(key, t_invoke, t_complete, value, op)]. For each observation, compare
    with the highest value of its key completed before it was invoked."""
    by_key = collections.defaultdict(list)
    for o in obs:
        by_key[o[0]].append(o)
    for key, lst in by_key.items():
        done = sorted(lst, key=lambda o: o[2])
        i, best = 0, None
        for b in sorted(lst, key=lambda o: o[1]):
            while i < len(done) and done[i][2] < b[1]:
                if best is None or done[i][3] > best[3]:
                    best = done[i]
                i += 1
            if best is not None and b[3] < best[3]:
                on_regression(key, best, b)


def check_committed(m, r):
    """committed-offset-regression: commits acknowledged, 409s and committed offsets read."""
    obs = []
    for op in m.client:
        v = op.value
        key = (pk_of(v), v.get("group"))
        if op.f == "commit" and op.type == "ok" and v.get("offset") is not None:
            obs.append((key, op.t0, op.t1, int(v["offset"]), op))
        elif op.f == "commit" and op.type == "fail" and v.get("current") is not None:
            obs.append((key, op.t0, op.t1, as_offset(v["current"]), op))
        elif op.f in ("consume", "poll") and op.type == "ok" and "committed_offset" in v \
                and v.get("group") is not None:
            obs.append((key, op.t0, op.t1, as_offset(v["committed_offset"]), op))

    def report(key, a, b):
        r.add("committed-offset-regression", [a[4], b[4]], partition=key[0], group=key[1],
              offsets=[a[3], b[3]])
    regression_sweep(obs, report)


def check_log_start(m, r):
    """log-start-regression: log start moving backwards; a read below it that succeeded."""
    obs = []
    for op in m.client:
        v = op.value
        if op.f in ("consume", "poll") and op.type in ("ok", "fail") \
                and v.get("log_start") is not None:
            obs.append((pk_of(v), op.t0, op.t1, int(v["log_start"]), op))
            if op.type == "ok" and v.get("offset") is not None \
                    and int(v["offset"]) < int(v["log_start"]):
                r.add("log-start-regression", [op], partition=pk_of(v), what="read below log start",
                      offset=int(v["offset"]), log_start=int(v["log_start"]))
        elif op.f == "topic-info" and op.type == "ok":
            for p in v.get("partitions") or ():
                if p.get("log_start") is not None:
                    k = pk_of({"topic": v.get("topic"), "partition": p.get("partition")})
                    obs.append((k, op.t0, op.t1, int(p["log_start"]), op))

    def report(key, a, b):
        r.add("log-start-regression", [a[4], b[4]], partition=key, what="moved backwards",
              log_starts=[a[3], b[3]])
    regression_sweep(obs, report)


# ---------------------------------------------------------------- driver


def stats_of(m, ops):
    s = collections.Counter()
    for op in m.client:
        s["ops"] += 1
        s["%s_%s" % (op.f, op.type)] += 1
    faults = collections.Counter()
    for op in ops:
        if op.process == "nemesis" and op.value.get("fault"):
            faults[str(op.value["fault"])] += 1
    acked_values = {op.value.get("value") for op in m.produces if op.type == "ok"}
    return {
        "operations": s["ops"],
        "produces": sum(v for k, v in s.items() if k.startswith("produce_")),
        "acknowledged": len(acked_values),
        "produce_ok": s["produce_ok"], "produce_fail": s["produce_fail"],
        "produce_info": s["produce_info"],
        "reads_ok": len(m.reads), "commits_ok": s["commit_ok"],
        "values_read": len(m.read_values),
        "partitions": sorted(m.log),
        "faults": sum(faults.values()),
        "faults_by_kind": dict(sorted(faults.items())),
    }


def check(lines, min_acks=1, min_faults=1, require_drain=False, detail_max=100):
    """Check a history ([(line_no, event)] or [event]); returns the report dict."""
    if lines and isinstance(lines[0], dict):
        lines = list(enumerate(lines, 1))
    ops = pair_ops(lines)
    m = Model(ops)
    r = Report(detail_max)
    drains = final_drain(m)
    check_offsets(m, r)
    check_missing(m, r, drains)
    check_polls(m, r)
    check_send_order(m, r)
    check_high_watermark(m, r)
    check_committed(m, r)
    check_log_start(m, r)
    stats = stats_of(m, ops)
    vacuous = []
    if stats["acknowledged"] < min_acks:
        vacuous.append("%d acknowledged produces, fewer than the minimum %d"
                       % (stats["acknowledged"], min_acks))
    if stats["faults"] < min_faults:
        vacuous.append("%d faults injected, fewer than the minimum %d"
                       % (stats["faults"], min_faults))
    if require_drain and not drains:
        vacuous.append("no final drain in the history")
    skipped = []
    if not drains:
        skipped.append("unseen and gap (no final drain in the history)")
    anomalies = {k: v for k, v in r.found.items() if r.count[k]}
    valid = "vacuous" if vacuous and not anomalies else (not anomalies)
    return {
        "valid": valid,
        "anomaly_counts": {k: r.count[k] for k in ANOMALY_KINDS if r.count[k]},
        "anomalies": anomalies,
        "vacuous": vacuous,
        "skipped_checks": skipped,
        "drained_partitions": {pk: {"complete": d[0], "log_start": d[1], "high_watermark": d[2]}
                               for pk, d in sorted(drains.items())},
        "stats": stats,
    }


def exit_code(report):
    if report["anomaly_counts"]:
        return 1
    return 2 if report["vacuous"] else 0


def format_report(report, per_kind=5):
    s = report["stats"]
    out = ["operations %d: produces %d (ok %d, fail %d, info %d), %d values acknowledged; "
           "reads %d; commits %d" % (s["operations"], s["produces"], s["produce_ok"],
                                     s["produce_fail"], s["produce_info"], s["acknowledged"],
                                     s["reads_ok"], s["commits_ok"]),
           "faults %d: %s" % (s["faults"], ", ".join("%s=%d" % kv for kv in
                                                      s["faults_by_kind"].items()) or "none")]
    for pk, d in report["drained_partitions"].items():
        out.append("drain %s: log_start %d, high_watermark %d%s" % (
            pk, d["log_start"], d["high_watermark"], "" if d["complete"] else " INCOMPLETE"))
    for why in report["skipped_checks"]:
        out.append("skipped: %s" % why)
    for kind, n in report["anomaly_counts"].items():
        out.append("ANOMALY %s: %d — %s" % (kind, n, EXPLAIN[kind]))
        for e in report["anomalies"][kind][:per_kind]:
            fields = {k: v for k, v in e.items() if k not in ("kind", "ops")}
            out.append("  %s" % json.dumps(fields, sort_keys=True))
            for op in e["ops"][:4]:
                out.append("    line %s: %s %s %s %s" % (op["line"], op["process"], op["type"],
                                                        op["f"], json.dumps(op["value"],
                                                                            sort_keys=True)[:200]))
    for why in report["vacuous"]:
        out.append("VACUOUS: %s" % why)
    verdict = {True: "VALID", False: "INVALID", "vacuous": "VACUOUS"}[report["valid"]]
    out.append(verdict)
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("history", help="history.jsonl")
    ap.add_argument("--out", help="write the full report as JSON here")
    ap.add_argument("--min-acks", type=int, default=1,
                    help="fewer acknowledged produces makes the run vacuous (default 1)")
    ap.add_argument("--min-faults", type=int, default=1,
                    help="fewer injected faults makes the run vacuous (default 1)")
    ap.add_argument("--require-drain", action="store_true",
                    help="a history without a final drain is vacuous")
    ap.add_argument("--detail", type=int, default=100,
                    help="anomalies listed per kind in the JSON (all are counted)")
    ap.add_argument("--quiet", action="store_true", help="print only the verdict")
    a = ap.parse_args(argv)
    try:
        lines = load_history(a.history)
    except (OSError, ValueError) as e:
        print("checker: %s" % e, file=sys.stderr)
        return 3
    report = check(lines, a.min_acks, a.min_faults, a.require_drain, a.detail)
    text = format_report(report)
    print(text.splitlines()[-1] if a.quiet else text)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1, sort_keys=True)
            f.write("\n")
    return exit_code(report)


if __name__ == "__main__":
    sys.exit(main())
