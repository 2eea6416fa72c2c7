"""linearizability.py - records a history of tag operations against a registry and checks that
it is linearizable, one tag (register) at a time.

Role: tests/integration/test_cluster_chaos.py drives concurrent manifest PUTs, tag DELETEs
and tag reads against several regions while a nemesis kills and partitions them, and must
then decide whether every answer the clients got could have come from one tag store that
applied the operations one at a time, each at an instant between its request and its
answer (Herlihy & Wing, "Linearizability", 1990). Python 3 standard library only.

Model: one register per tag. Its state is a manifest digest, or absent. Operations:
    write(v)     a manifest PUT by tag whose answer was 201: the tag is v afterwards
    delete       a tag DELETE answered 202: the tag was present, it is absent afterwards
    delete       answered 404 MANIFEST_UNKNOWN: the tag was absent and stays absent
    read         a manifest GET/HEAD by tag: 200 with digest v (the tag was v) or 404 (absent)
A write or delete whose outcome the client could not learn (a timeout, a 503 UNAVAILABLE, a
connection cut by a crash) is *indeterminate*: it may take effect at any instant after its
invocation, or never (an indeterminate delete sets the tag absent if it takes effect). An
operation known to have had no effect is left out, and so are failed reads and reads
answered from stale state (`Warning: 110`), which promise nothing about recency.

Checker: per tag, the search of Wing & Gong ("Testing and verifying concurrent objects",
1993) with Lowe's memoisation ("Testing for linearizability", 2017), also the core of
Knossos and Porcupine: walk the time-ordered list of call and return events; at each point
try to linearize any operation whose call comes before the first pending return; a
configuration (operations linearized, register state) seen before is not explored again;
reaching the return of an operation that is not yet linearized means backtracking. Tags are
checked independently (linearizability is compositional: Herlihy & Wing, theorem 1).
Calls and returns at equal times count as concurrent (the generous reading of a clock tick).

Three reductions keep the search small with many concurrent and indeterminate operations;
each keeps exactly the same verdict (each was checked against an exhaustive search over
every order of thousands of small random histories):
  - Forced reads. A read (or a delete that found nothing) that may be linearized now, in the
    current state, is linearized now and no alternative to it is tried: any linearization
    from here that places it later stays one with it moved here (it changes nothing, and
    everything still to be linearized returns after it was called).
  - Indeterminate operations go only right before an operation that needs them: the write of
    v before a read of v, a write before a delete that found the tag, a delete before a read
    of absent. In any linearization, the operation right after an indeterminate one either
    needs its effect in that way or overwrites it (values are unique: only reads of v see the
    write of v, and they come right after it), so it can be dropped otherwise. Interchangeable
    ones (deletes; writes nobody read) are counted, not named, in the configuration.
  - Before the search, indeterminate operations nothing could observe are dropped: a write
    of v that no read returned when no delete that found the tag could follow it, a delete
    when no read of absent and no delete that found nothing could follow it.
Writes must carry distinct values per tag (distinct manifests); check() refuses a history
that breaks this.

API
---
    hist = History()                          # thread-safe recorder, time.monotonic clock
    op = hist.invoke("t3", WRITE, value=digest, process="w1", region="region-b")
    hist.ok(op)                               # 201
    op = hist.invoke("t3", READ, process="w2", region="region-a")
    hist.ok(op, value=digest)                 # 200 with that digest; value=None: 404
    hist.stale(op)                            # answered with the stale warning: left out
    op = hist.invoke("t3", DELETE)
    hist.ok(op, value=True)                   # 202 (deleted); value=False: 404 (was absent)
    hist.fail(op)                             # known to have had no effect (left out)
    hist.info(op, "503 UNAVAILABLE")          # indeterminate (left out if a read)
    results = check_history(hist)             # {tag: Result}
    r = check(ops, initial=None, max_configs=2_000_000)    # one tag's ops
    r.valid            # True, False, or None when max_configs was reached
    r.message          # for an invalid history: the operation that could not be linearized
                       # in the longest partial linearization found, the register's state
                       # there, that linearization's last steps and the history around it
    r.ops, r.indeterminate, r.observed, r.pruned, r.dropped, r.configs, r.seconds  # sizes
"""

import threading
import time

WRITE = "write"
READ = "read"
DELETE = "delete"

PENDING = "pending"
OK = "ok"
FAIL = "fail"  # had no effect
INFO = "info"  # indeterminate
STALE = "stale"  # a read answered from stale state

# Internal operation kinds of the search.
K_WRITE, K_READ, K_DEL_OK, K_DEL_ABSENT, K_DEL_ANY = range(5)

INF = float("inf")
# Search stack frame modes: a NORMAL frame is a choice (backtracking tries the operations
# after it), a FORCED one is not (module comment: forced reads), a COMPANION is an indeterminate
# operation popped together with the operation above it, which needed it.
NORMAL, FORCED, COMPANION = range(3)


class Op:
    """One client operation. call/ret are clock readings (ret None while pending and for
    indeterminate operations); value is the written digest, the read digest (None: absent)
    or, for a delete, True (deleted) / False (was absent)."""

    __slots__ = ("key", "kind", "value", "call", "ret", "status", "process", "region", "note",
                 "seq")

    def __init__(self, key, kind, value, call, process, region, seq):
        self.key = key
        self.kind = kind
        self.value = value
        self.call = call
        self.ret = None
        self.status = PENDING
        self.process = process
        self.region = region
        self.note = ""
        self.seq = seq

    def describe(self, t0=0.0):
        ret = "..." if self.ret is None else "%.3f" % (self.ret - t0)
        if self.kind == WRITE:
            what = "write(%s)" % short(self.value)
        elif self.kind == READ:
            what = "read"
        else:
            what = "delete"
        if self.status == OK and self.kind == READ:
            res = "-> %s" % short(self.value)
        elif self.status == OK and self.kind == DELETE:
            res = "-> deleted" if self.value else "-> was absent"
        elif self.status == OK:
            res = "-> ok"
        else:
            res = "-> %s" % self.status
        where = " ".join(x for x in (self.process or "", "@" + self.region if self.region
                                     else "") if x)
        note = " (%s)" % self.note if self.note else ""
        return "#%d [%.3f, %s] %s %s %s %s%s" % (self.seq, self.call - t0, ret, where,
                                                  self.key, what, res, note)

    def __repr__(self):
        return "Op(%s)" % self.describe()


def short(value):
    """A digest shortened for messages; None is 'absent'."""
    if value is None:
        return "absent"
    s = str(value)
    if s.startswith("sha256:"):
        return s[7:19]
    return s


class History:
    """A thread-safe record of operations, in invocation order."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.lock = threading.Lock()
        self.ops = []
        self.t0 = clock()

    def invoke(self, key, kind, value=None, process=None, region=None, at=None):
        if kind not in (WRITE, READ, DELETE):
            raise ValueError("unknown operation kind %r" % (kind,))
        if kind == WRITE and value is None:
            raise ValueError("a write needs a value")
        with self.lock:
            op = Op(key, kind, value if kind == WRITE else None,
                    self.clock() if at is None else at, process, region, len(self.ops))
            self.ops.append(op)
        return op

    def _complete(self, op, status, note, at):
        with self.lock:
            if op.status != PENDING:
                raise ValueError("operation completed twice: %r" % op)
            op.ret = self.clock() if at is None else at
            op.status = status
            op.note = note or ""

    def ok(self, op, value=None, note="", at=None):
        """The operation took effect: a read returned value (None: absent); a delete deleted
        (value=True) or found the tag absent (value=False)."""
        if op.kind == READ:
            op.value = value
        elif op.kind == DELETE:
            if value not in (True, False):
                raise ValueError("a delete completes with value True or False")
            op.value = value
        self._complete(op, OK, note, at)

    def fail(self, op, note="", at=None):
        """The operation certainly had no effect (left out of the check)."""
        self._complete(op, FAIL, note, at)

    def info(self, op, note="", at=None):
        """The outcome is unknown: a write or delete may have taken effect or not."""
        self._complete(op, INFO, note, at)

    def stale(self, op, value=None, note="", at=None):
        """A read answered from possibly stale state (left out of the check)."""
        op.value = value
        self._complete(op, STALE, note, at)

    def snapshot(self):
        with self.lock:
            return list(self.ops)

    def by_key(self):
        out = {}
        for op in self.snapshot():
            out.setdefault(op.key, []).append(op)
        return out

    def counts(self):
        """{(kind, status): n} over the whole history."""
        out = {}
        for op in self.snapshot():
            k = (op.kind, op.status)
            out[k] = out.get(k, 0) + 1
        return out


class Result:
    def __init__(self, key):
        self.key = key
        self.valid = True
        self.message = ""
        self.ops = 0  # operations in the search
        self.indeterminate = 0  # of which indeterminate
        self.pruned = 0  # indeterminate operations dropped before the search
        self.observed = 0  # indeterminate writes whose value a read returned
        self.dropped = 0  # operations left out (failed, stale or indeterminate reads)
        self.configs = 0  # configurations explored
        self.seconds = 0.0

    def __repr__(self):
        v = {True: "linearizable", False: "NOT linearizable", None: "undecided"}[self.valid]
        return "Result(%s: %s, %d ops, %d indeterminate, %d pruned, %d configs)" % (
            self.key, v, self.ops, self.indeterminate, self.pruned, self.configs)


class _Entry:
    """A search operation: kind, value code, call and return time, the Op it came from."""

    __slots__ = ("kind", "value", "call", "ret", "op", "index", "observed")

    def __init__(self, kind, value, call, ret, op):
        self.kind = kind
        self.value = value
        self.call = call
        self.ret = ret
        self.op = op
        self.index = -1
        self.observed = False  # an indeterminate write whose value a read returned


def _entries(ops, result):
    """The search operations of one tag's ops (see the module comment), value codes assigned
    later. Raises ValueError on a history the model cannot take."""
    out = []
    written = set()
    for op in ops:
        if op.status == PENDING:
            raise ValueError("operation still pending: %r" % op)
        if op.kind == READ:
            if op.status != OK:
                result.dropped += 1
                continue
            out.append(_Entry(K_READ, op.value, op.call, op.ret, op))
            continue
        if op.status == FAIL:
            result.dropped += 1
            continue
        if op.status == STALE:
            raise ValueError("only reads can be stale: %r" % op)
        if op.kind == WRITE:
            if op.value is None:
                raise ValueError("a write needs a value: %r" % op)
            if op.value in written:
                raise ValueError("two writes of the same value to %s: %s" % (op.key,
                                                                             short(op.value)))
            written.add(op.value)
            ind = op.status == INFO
            out.append(_Entry(K_WRITE, op.value, op.call, INF if ind else op.ret, op))
        elif op.status == INFO:
            out.append(_Entry(K_DEL_ANY, None, op.call, INF, op))
        else:
            out.append(_Entry(K_DEL_OK if op.value else K_DEL_ABSENT, None, op.call, op.ret, op))
    return out


def _prune(entries, result):
    """Drops indeterminate operations nothing could observe (module comment) and marks the
    indeterminate writes a read observed."""
    read_values = {x.value for x in entries if x.kind == K_READ and x.value is not None}
    keep = []
    for e in entries:
        if e.kind == K_WRITE and e.ret == INF:
            e.observed = e.value in read_values
            seen = e.observed or any(x.kind == K_DEL_OK and x.ret >= e.call for x in entries)
        elif e.kind == K_DEL_ANY:
            seen = any((x.kind == K_READ and x.value is None or x.kind == K_DEL_ABSENT)
                       and x.ret >= e.call for x in entries)
        else:
            seen = True
        if seen:
            keep.append(e)
        else:
            result.pruned += 1
    result.observed = sum(1 for e in keep if e.kind == K_WRITE and e.ret == INF and e.observed)
    return keep


def _step(kind, value, state):
    """(allowed, new state) of applying an operation to the register."""
    if kind == K_WRITE:
        return True, value
    if kind == K_READ:
        return state == value, state
    if kind == K_DEL_OK:
        return state != 0, 0
    if kind == K_DEL_ABSENT:
        return state == 0, 0
    return True, 0  # K_DEL_ANY


def check(ops, initial=None, max_configs=2_000_000, t0=None):
    """Checks one tag's operations (a list of Op, all with the same key); initial is the tag's
    digest before the first of them (None: absent). Returns a Result."""
    started = time.monotonic()
    key = ops[0].key if ops else None
    result = Result(key)
    entries = _entries(ops, result)
    if initial is not None and any(e.kind == K_WRITE and e.value == initial for e in entries):
        raise ValueError("a write of %s's initial value %s" % (key, short(initial)))
    entries = _prune(entries, result)
    result.ops = len(entries)
    result.indeterminate = sum(1 for e in entries if e.ret == INF)
    if not entries:
        result.seconds = time.monotonic() - started
        return result

    # Value codes: 0 is absent, each digest its own small int.
    codes = {None: 0}
    if initial is not None:
        codes[initial] = 1
    for e in entries:
        if e.value not in codes:
            codes[e.value] = len(codes)
        e.value = codes[e.value]
    names = {c: v for v, c in codes.items()}

    # Events: call of op i is node 2i+1, its return 2i+2; node 0 is the head. Calls sort
    # before returns at equal times (concurrent rather than ordered: the generous reading).
    n = len(entries)
    for i, e in enumerate(entries):
        e.index = i
    events = [(e.call, 0, 2 * i + 1) for i, e in enumerate(entries)]
    events += [(e.ret, 1, 2 * i + 2) for i, e in enumerate(entries) if e.ret != INF]
    events.sort()
    size = 2 * n + 2
    nxt = [-1] * size
    prv = [-1] * size
    last = 0
    for _, _, node in events:
        nxt[last] = node
        prv[node] = last
        last = node
    nxt[last] = -1
    has_ret = [e.ret != INF for e in entries]
    completed_total = sum(has_ret)

    def lift(i):
        c = 2 * i + 1
        nxt[prv[c]] = nxt[c]
        if nxt[c] != -1:
            prv[nxt[c]] = prv[c]
        if has_ret[i]:
            r = c + 1
            nxt[prv[r]] = nxt[r]
            if nxt[r] != -1:
                prv[nxt[r]] = prv[r]

    def unlift(i):
        c = 2 * i + 1
        if has_ret[i]:
            r = c + 1
            nxt[prv[r]] = r
            if nxt[r] != -1:
                prv[nxt[r]] = r
        nxt[prv[c]] = c
        if nxt[c] != -1:
            prv[nxt[c]] = c

    def companion(e):
        """The callable indeterminate operation to linearize right before e, which e needs:
        the write of the value a read returns, a write the tag had before a delete that found
        it, a delete before a read of absent; -1 if there is none.

        Linearizing indeterminate operations only there is enough: right after one, the next
        operation either needs its effect or overwrites it (values are unique, so only reads
        of its value see a write, and they must come right after it). The write of a value is
        the only one; the other kinds are interchangeable (each stays callable as the search
        goes on, and all have the same effect here), so the first callable one is taken."""
        if e.kind == K_READ and e.value != 0:
            want, value = K_WRITE, e.value
        elif e.kind == K_DEL_OK:
            want, value = K_WRITE, None
        elif (e.kind == K_READ and e.value == 0) or e.kind == K_DEL_ABSENT:
            want, value = K_DEL_ANY, None
        else:
            return -1
        x = nxt[0]
        while x != -1 and x & 1:
            c = entries[(x - 1) >> 1]
            if c.ret == INF and c.kind == want and (
                    want == K_DEL_ANY or (c.value == value if value is not None
                                          else not c.observed)):
                return (x - 1) >> 1
            x = nxt[x]
        return -1

    # A configuration is (operations linearized, state, interchangeable indeterminate writes
    # used, indeterminate deletes used): which interchangeable ones were used does not
    # matter, as every one used was callable then, so the callable ones left are the same in
    # number and the others are the same ones.
    state = codes.get(initial, 0)
    linearized = 0  # bit i: operation i is linearized (interchangeable ones: counted in used)
    used = [0, 0]  # interchangeable indeterminate writes, deletes linearized
    done = 0  # completed operations linearized
    stack = []  # (op index, state before, mode)
    cache = set()
    configs = 0
    best_done, best = -1, None  # the deepest point of failure: (blocked op, state, prefix)
    fresh = True  # at a configuration not looked at yet
    node = -1
    while done < completed_total:  # indeterminate operations need not be linearized
        pick, comp = -1, -1
        if fresh:
            fresh = False
            # A read-like operation (a read, a delete that found nothing) that may be
            # linearized now is: it leaves the state as it is, and any linearization from
            # here that places it later stays one with it moved to this point (everything
            # still to be linearized returns after it was called). Alternatives to it are
            # therefore never tried (forced frames are popped without trying others).
            x = nxt[0]
            while x != -1 and x & 1:
                e = entries[(x - 1) >> 1]
                if (e.kind == K_READ and e.value == state) or (e.kind == K_DEL_ABSENT
                                                               and state == 0):
                    pick = (x - 1) >> 1
                    break
                x = nxt[x]
            if pick >= 0:
                key = (linearized | (1 << pick), state, used[0], used[1])
                if key not in cache:
                    mode, new_state = FORCED, state
                else:
                    pick, node = -1, -2  # explored before and failed: backtrack
            else:
                node = nxt[0]
        if pick < 0 and node >= 0 and node & 1:  # a call: try to linearize it
            i = (node - 1) >> 1
            e = entries[i]
            if e.ret == INF:  # indeterminate: only together with an operation needing it
                node = nxt[node]
                continue
            allowed, new_state = _step(e.kind, e.value, state)
            uw, ud = used
            bits = linearized | (1 << i)
            if not allowed:
                comp = companion(e)
                if comp >= 0:
                    c = entries[comp]
                    if c.kind == K_DEL_ANY:
                        mid, ud = 0, ud + 1
                    elif c.observed:
                        mid, bits = c.value, bits | (1 << comp)
                    else:
                        mid, uw = c.value, uw + 1
                    allowed, new_state = _step(e.kind, e.value, mid)
            key = (bits, new_state, uw, ud)
            if allowed and key not in cache:
                pick, mode = i, NORMAL
            else:
                comp = -1
                node = nxt[node]
                continue
        if pick >= 0:
            configs += 1
            if configs > max_configs:
                result.valid = None
                result.configs = configs
                result.message = ("search stopped after %d configurations (%d ops, %d "
                                  "indeterminate): undecided" % (max_configs, n,
                                                                 result.indeterminate))
                result.seconds = time.monotonic() - started
                return result
            cache.add(key)
            if comp >= 0:
                stack.append((comp, state, COMPANION))
                lift(comp)
                c = entries[comp]
                state = c.value if c.kind == K_WRITE else 0
                if c.kind == K_DEL_ANY:
                    used[1] += 1
                elif c.observed:
                    linearized |= 1 << comp
                else:
                    used[0] += 1
            stack.append((pick, state, mode))
            state = new_state
            linearized |= 1 << pick
            done += 1
            lift(pick)
            fresh = True
            continue
        # The return of an operation not linearized yet, a configuration explored before,
        # or (a guard; impossible while completed operations remain) the end of the list.
        if node >= 0 and done > best_done:
            i = (node - 1) >> 1
            best_done = done
            best = (entries[i], state, [entries[j] for j, _, _ in stack[-12:]])
        while stack:
            j, state, mode = stack.pop()
            linearized &= ~(1 << j)
            done -= 1
            unlift(j)
            if mode == FORCED:
                continue
            if stack and stack[-1][2] == COMPANION:
                k, state, _ = stack.pop()
                c = entries[k]
                if c.kind == K_DEL_ANY:
                    used[1] -= 1
                elif c.observed:
                    linearized &= ~(1 << k)
                else:
                    used[0] -= 1
                unlift(k)
            node = nxt[2 * j + 1]
            break
        else:
            result.valid = False
            break
    result.configs = configs
    if result.valid is False:
        result.message = _explain(entries, best, names, best_done, completed_total,
                                  t0 if t0 is not None else min(e.call for e in entries))
    result.seconds = time.monotonic() - started
    return result


def _explain(entries, best, names, best_done, total, t0):
    blocked, state, prefix = best
    lines = ["tag %s is not linearizable: %s cannot be linearized (at best %d of %d completed "
             "operations were, the register then holding %s)" % (
                 blocked.op.key, blocked.op.describe(t0), best_done, total,
                 short(names.get(state)))]
    if prefix:
        lines.append("  last operations of that partial linearization:")
        lines += ["    " + e.op.describe(t0) for e in prefix]
    lo = blocked.call - 2.0
    around = [e for e in entries if e.call <= blocked.ret and (e.ret >= lo)]
    around.sort(key=lambda e: e.call)
    lines.append("  operations overlapping the 2 s before it and its own interval (%d):"
                 % len(around))
    shown = around[-40:]
    if len(around) > len(shown):
        lines.append("    ... %d earlier" % (len(around) - len(shown)))
    lines += ["    " + e.op.describe(t0) for e in shown]
    if blocked.kind == K_READ and blocked.value != 0:
        w = [e for e in entries if e.kind == K_WRITE and e.value == blocked.value]
        if w:
            lines.append("  the write of that value: " + w[0].op.describe(t0))
        else:
            lines.append("  no write of that value is in the history")
    return "\n".join(lines)


def check_history(history, initial=None, max_configs=2_000_000):
    """{tag: Result} for every tag of a History (or a list of Op); initial: {tag: digest} of
    tags present before the history began."""
    ops = history.snapshot() if isinstance(history, History) else list(history)
    t0 = history.t0 if isinstance(history, History) else (min((o.call for o in ops),
                                                               default=0.0))
    by_key = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    initial = initial or {}
    return {k: check(v, initial.get(k), max_configs, t0) for k, v in sorted(by_key.items())}
