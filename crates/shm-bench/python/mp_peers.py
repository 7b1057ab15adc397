#!/usr/bin/env python3
"""Python `multiprocessing` peer measurements for the shm-bench runner.

Standard library only (CPython 3.11).  The Rust runner in crates/shm-bench
runs this script once per (case, pinning) and parses its output.

Invocation
----------
    python3 mp_peers.py --case CASE --samples N --max-seconds T --pin PIN [--batch M]

PIN
    split   parent on CPU 0, child process on CPU 1
    same    parent and child process both on CPU 0
    single  the one process on CPU 0 (single-process cases only)
    Pinning uses os.sched_setaffinity(0, {cpu}), in the parent and as the first
    thing the child does.  If it fails (e.g. fewer CPUs) the run continues
    unpinned and reports "pinned": false.  Single-process cases accept any PIN
    and pin to CPU 0; two-process cases reject "single".

Procedure
    Children are started with multiprocessing.get_context("fork") (the Linux
    default in 3.11) and are daemon processes.  Warm-up runs the measured
    operation for ~10% of N samples or 0.2 s, whichever is smaller (at least
    one sample).  Then samples are collected until N samples or T seconds of
    measuring, whichever comes first, but never fewer than 5 samples.

Output
    Exactly one line of JSON on stdout, nothing else (diagnostics go to stderr):
      {"case": CASE, "kind": "latency"|"throughput", "samples_ns": [float, ...],
       "batch": M_or_1, "pinned": bool, "python": "3.11.x", "note": "..."}
    latency:    a sample is the time of ONE operation in ns (perf_counter_ns
                around it); for cheap ops it is a batch's elapsed / "batch".
    throughput: a sample is (time for a batch of M messages) / M, ns/message.
    Exit status 0 on success, non-zero (message on stderr) on any failure;
    2 for usage errors.

Cases
    queue_rt             int round trip over two mp.Queue (parent put/get, child echoes)
    pipe_rt              int round trip over one duplex mp.Pipe()
    queue_tp             one-way ints through one mp.Queue, M per batch (default 10000),
                         child acks each M gets over an mp.Pipe
    lock_uncontended     l.acquire(); l.release() on mp.Lock(), batches of 100
    lock_handoff         two processes alternate increments of a RawValue under one
                         mp.Lock; per hand-off, batches of 1000 parent increments / 2000
    value_locked_inc     with v.get_lock(): v.value += 1 on mp.Value('q'), batches of 100
    mgr_dict_get         d[k] on a Manager().dict() of 16 ints (the manager's server process is
                         the second process, pinned as a child), single calls
    mgr_dict_set         d[k] = v on the same, single calls
    mgr_list_append      l.append(i) on a Manager().list(), single calls
    dict_get, dict_set, list_append
                         the same on a plain dict / list in one process (the ceiling),
                         batches of 100 (loop unrolled x10)
    array_copy_{in,out}_{8M,256M}
                         one whole memcpy into / out of an mp.Array('d', n, lock=False)
    pool_map_c1          mp.Pool(2).map(x*x, range(M), chunksize=1), M per batch
                         (default 20000); ns per item
    pool_map_c1000       the same at chunksize=1000, M default 200000
    pool_apply           one pool.apply(x*x, (x,)) round trip on an mp.Pool(2)
    pool_apply_async     M pool.apply_async(x*x, (x,)) then every .get(), M per batch
                         (default 10000); ns per call
    The pool cases do not pin: the pool's workers are forked from the parent and
    would inherit its CPU; the parent is unpinned before the pool starts and the
    workers run wherever the scheduler puts them.  Every case checks its values.

Never hangs
    The parent does NOT pass timeouts to Queue.get / Connection.recv: in 3.11
    Queue.get(timeout=...) goes through Connection.poll + selectors and adds
    tens of microseconds per call, which would distort the numbers.  Instead a
    SIGALRM watchdog (signal.setitimer, re-armed outside the timed region before
    every sample: 30 s per sample, 300 s for lock_handoff) interrupts any
    blocked or spinning operation; a timeout is an error exit.  Children set
    PR_SET_PDEATHSIG so they die with the parent (even on SIGKILL), are stopped
    with a sentinel / stop flag, joined with a timeout, and terminated/killed
    if still alive.  Locks are unlinked at creation (fork context) and heap
    arenas are unlinked files, so nothing is left in /dev/shm.

Run time
    lock_handoff --pin same is scheduler-bound: each process spins through its
    time slice before the other runs, ~4 ms per hand-off, so one sample (1000
    parent increments) takes ~8 s and the 5-sample minimum ~40 s whatever T is.
"""

import argparse
import ctypes
import json
import multiprocessing as mp
import os
import platform
import signal
import sys
import time

SAMPLE_TIMEOUT_S = 30.0   # watchdog per sample (per warm-up op, per measured sample)
HANDOFF_SAMPLE_TIMEOUT_S = 300.0  # lock_handoff --pin same: ~4 ms per hand-off, ~8 s per batch
START_TIMEOUT_S = 30.0    # child start-up handshake
JOIN_TIMEOUT_S = 10.0     # child exit after the sentinel
WARMUP_MAX_S = 0.2
MIN_SAMPLES = 5

TWO_PROCESS_CASES = ("queue_rt", "pipe_rt", "queue_tp", "lock_handoff",
                     "mgr_dict_get", "mgr_dict_set", "mgr_list_append")
ARRAY_CASES = {
    "array_copy_in_8M": ("in", 8 << 20),
    "array_copy_in_256M": ("in", 256 << 20),
    "array_copy_out_8M": ("out", 8 << 20),
    "array_copy_out_256M": ("out", 256 << 20),
}
POOL_CASES = ("pool_map_c1", "pool_map_c1000", "pool_apply", "pool_apply_async")
SINGLE_PROCESS_CASES = (("lock_uncontended", "value_locked_inc", "dict_get", "dict_set",
                         "list_append") + tuple(ARRAY_CASES) + POOL_CASES)
ALL_CASES = TWO_PROCESS_CASES + SINGLE_PROCESS_CASES


class BenchError(Exception):
    pass


class BenchTimeout(BenchError):
    pass


def log(msg):
    print(f"mp_peers: {msg}", file=sys.stderr, flush=True)


def pin_to(cpu):
    """Pin the calling process to one CPU; False (and continue) if impossible."""
    try:
        os.sched_setaffinity(0, {cpu})
        return True
    except (OSError, ValueError, AttributeError) as e:
        log(f"pid {os.getpid()}: cannot pin to CPU {cpu} ({e}); continuing unpinned")
        return False


# --------------------------------------------------------------------------
# Watchdog: SIGALRM raises BenchTimeout in the main thread.  A blocked
# sem_wait/read gets EINTR, CPython runs the handler and the exception
# propagates (PEP 475 only retries when the handler returns normally).
# --------------------------------------------------------------------------

_armed_for = SAMPLE_TIMEOUT_S


def _on_alarm(signum, frame):
    raise BenchTimeout(f"operation did not complete within the watchdog limit ({_armed_for:g} s)")


def arm(seconds=SAMPLE_TIMEOUT_S):
    global _armed_for
    _armed_for = seconds
    signal.setitimer(signal.ITIMER_REAL, seconds)


def disarm():
    signal.setitimer(signal.ITIMER_REAL, 0)


# --------------------------------------------------------------------------
# Children
# --------------------------------------------------------------------------

def _die_with_parent():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(ctypes.c_int(PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGKILL),
                   ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
    except Exception:  # best effort; the sentinel and join/terminate still apply
        pass


def _child_main(body, cpu, ready, parent_pid, *objs):
    pinned = pin_to(cpu)                    # first thing the child does
    _die_with_parent()
    if os.getppid() != parent_pid:          # parent died before prctl took effect
        os._exit(1)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    ready.send(pinned)
    ready.close()
    body(*objs)


class Children:
    def __init__(self, ctx):
        self.ctx = ctx
        self.procs = []

    def start(self, body, cpu, *objs):
        """Start a daemon child running body(*objs) on `cpu`; return its pinned flag."""
        r, w = self.ctx.Pipe(duplex=False)
        p = self.ctx.Process(target=_child_main, args=(body, cpu, w, os.getpid()) + objs,
                             daemon=True, name=f"mp_peers-{body.__name__}")
        p.start()
        self.procs.append(p)
        w.close()
        if not r.poll(START_TIMEOUT_S):
            raise BenchError(f"child did not start within {START_TIMEOUT_S:g} s")
        try:
            pinned = r.recv()
        except EOFError:
            raise BenchError(f"child exited during start-up (exitcode {p.exitcode})")
        r.close()
        return pinned

    def join(self):
        """Join after the sentinel was sent; error if a child needs terminating or failed."""
        bad = []
        for p in self.procs:
            p.join(JOIN_TIMEOUT_S)
            if p.is_alive():
                bad.append(f"{p.name} did not exit within {JOIN_TIMEOUT_S:g} s")
            elif p.exitcode != 0:
                bad.append(f"{p.name} exited with code {p.exitcode}")
        self.kill_all()
        if bad:
            raise BenchError("; ".join(bad))

    def kill_all(self):
        for p in self.procs:
            if p.is_alive():
                p.terminate()
                p.join(2.0)
            if p.is_alive():
                p.kill()
                p.join(2.0)


# --------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------

def collect(sample, n, max_seconds, first_done=None, warm=None, timeout=SAMPLE_TIMEOUT_S):
    """Warm up, then collect samples; `sample()` returns one sample in ns.

    first_done() runs once after the first warm-up sample (outside timing).
    warm(n_samples, seconds), if given, replaces the sample-by-sample warm-up
    (for cases whose single sample can take far longer than the warm-up budget).
    """
    pc = time.perf_counter
    warm_n = max(1, n // 10)
    if warm is not None:
        arm(timeout)
        warm(warm_n, WARMUP_MAX_S)
    else:
        warm_end = pc() + WARMUP_MAX_S
        k = 0
        while True:
            arm(timeout)
            sample()
            k += 1
            if k == 1 and first_done is not None:
                disarm()
                first_done()
            if k >= warm_n or pc() >= warm_end:
                break
    target = max(n, MIN_SAMPLES)
    out = []
    deadline = pc() + max_seconds
    while len(out) < target:
        arm(timeout)
        out.append(float(sample()))
        if len(out) >= MIN_SAMPLES and pc() >= deadline:
            break
    disarm()
    return out


# --------------------------------------------------------------------------
# Child bodies (run in the child after pinning)
# --------------------------------------------------------------------------

def queue_rt_child(q1, q2):
    while True:
        x = q1.get()
        if x is None:
            return
        q2.put(x)


def pipe_rt_child(b):
    while True:
        x = b.recv()
        if x is None:
            return
        b.send(x)


def queue_tp_child(q, ack_w, m):
    while True:
        for _ in range(m):
            if q.get() is None:
                return
        ack_w.send(True)


def lock_handoff_child(lock, counter, stop):
    while not stop.value:
        lock.acquire()
        if counter.value % 2 == 1:
            counter.value += 1
        lock.release()


# --------------------------------------------------------------------------
# Cases.  Each returns (kind, batch, note, samples, child_pinned).
# --------------------------------------------------------------------------

def case_queue_rt(ctx, kids, cpu, a):
    pc = time.perf_counter_ns
    q1, q2 = ctx.Queue(), ctx.Queue()
    try:
        child_pinned = kids.start(queue_rt_child, cpu, q1, q2)
        i = 0

        def one():
            nonlocal i
            i += 1
            t0 = pc()
            q1.put(i)
            r = q2.get()
            t1 = pc()
            if r != i:
                raise BenchError(f"queue_rt: sent {i}, got back {r!r}")
            return t1 - t0

        samples = collect(one, a.samples, a.max_seconds)
        q1.put(None)
        kids.join()
    finally:
        for q in (q1, q2):
            q.cancel_join_thread()
            q.close()
    note = ("one op = parent q1.put(i); q2.get() with the child doing q2.put(q1.get()); "
            "two mp.Queue, int payload, fork context")
    return "latency", 1, note, samples, child_pinned


def case_pipe_rt(ctx, kids, cpu, a):
    pc = time.perf_counter_ns
    pa, pb = ctx.Pipe()
    child_pinned = kids.start(pipe_rt_child, cpu, pb)
    i = 0

    def one():
        nonlocal i
        i += 1
        t0 = pc()
        pa.send(i)
        r = pa.recv()
        t1 = pc()
        if r != i:
            raise BenchError(f"pipe_rt: sent {i}, got back {r!r}")
        return t1 - t0

    samples = collect(one, a.samples, a.max_seconds)
    pa.send(None)
    kids.join()
    pa.close()
    pb.close()
    note = ("one op = parent a.send(i); a.recv() with the child doing b.send(b.recv()); "
            "one duplex mp.Pipe, int payload, fork context")
    return "latency", 1, note, samples, child_pinned


def case_queue_tp(ctx, kids, cpu, a):
    pc = time.perf_counter_ns
    m = a.batch if a.batch is not None else 10000
    if m < 1:
        raise BenchError("--batch must be >= 1")
    q = ctx.Queue()
    ack_r, ack_w = ctx.Pipe(duplex=False)
    try:
        child_pinned = kids.start(queue_tp_child, cpu, q, ack_w, m)
        rng = range(m)

        def one():
            t0 = pc()
            for k in rng:
                q.put(k)
            ack_r.recv()
            t1 = pc()
            return (t1 - t0) / m

        samples = collect(one, a.samples, a.max_seconds)
        q.put(None)
        kids.join()
    finally:
        q.cancel_join_thread()
        q.close()
    ack_r.close()
    ack_w.close()
    note = (f"ns per message: parent q.put(k) x {m} on one mp.Queue, child q.get() x {m} then "
            f"acks over an mp.Pipe; timed from first put to ack received, / {m}; int payload")
    return "throughput", m, note, samples, child_pinned


def case_lock_uncontended(ctx, kids, cpu, a):
    pc = time.perf_counter_ns
    l = ctx.Lock()
    r10 = range(10)

    def batch():
        t0 = pc()
        for _ in r10:
            l.acquire(); l.release()
            l.acquire(); l.release()
            l.acquire(); l.release()
            l.acquire(); l.release()
            l.acquire(); l.release()
            l.acquire(); l.release()
            l.acquire(); l.release()
            l.acquire(); l.release()
            l.acquire(); l.release()
            l.acquire(); l.release()
        t1 = pc()
        return (t1 - t0) / 100

    samples = collect(batch, a.samples, a.max_seconds)
    note = ("one op = l.acquire(); l.release() on an uncontended mp.Lock in one process; "
            "sample = batch of 100 (loop unrolled x10) / 100")
    return "latency", 100, note, samples, True


def case_value_locked_inc(ctx, kids, cpu, a):
    pc = time.perf_counter_ns
    v = ctx.Value('q', 0)
    r10 = range(10)
    batches = 0

    def batch():
        nonlocal batches
        t0 = pc()
        for _ in r10:
            with v.get_lock(): v.value += 1
            with v.get_lock(): v.value += 1
            with v.get_lock(): v.value += 1
            with v.get_lock(): v.value += 1
            with v.get_lock(): v.value += 1
            with v.get_lock(): v.value += 1
            with v.get_lock(): v.value += 1
            with v.get_lock(): v.value += 1
            with v.get_lock(): v.value += 1
            with v.get_lock(): v.value += 1
        t1 = pc()
        batches += 1
        return (t1 - t0) / 100

    samples = collect(batch, a.samples, a.max_seconds)
    if v.value != batches * 100:
        raise BenchError(f"value_locked_inc: counter {v.value}, expected {batches * 100}")
    note = ("one op = with v.get_lock(): v.value += 1 on mp.Value('q', 0) in one process; "
            "sample = batch of 100 (loop unrolled x10) / 100")
    return "latency", 100, note, samples, True


def case_lock_handoff(ctx, kids, cpu, a):
    pc = time.perf_counter_ns
    lock = ctx.Lock()
    counter = ctx.RawValue('q', 0)
    stop = ctx.RawValue('q', 0)
    child_pinned = kids.start(lock_handoff_child, cpu, lock, counter, stop)
    parent_incs = 0
    # Parent increments per sample: --batch if given (> 1), else 1000 on two cores and 10 on
    # one core, where every hand-off waits for a scheduler tick (~4 ms).
    per = a.batch if (a.batch or 0) > 1 else (10 if a.pin == "same" else 1000)

    def batch():
        nonlocal parent_incs
        done = 0
        t0 = pc()
        while done < per:
            lock.acquire()
            if counter.value % 2 == 0:
                counter.value += 1
                done += 1
            lock.release()
        t1 = pc()
        parent_incs += per
        return (t1 - t0) / (2 * per)

    def warm(n_batches, seconds):
        # Warm up by single increments so that the 0.2 s budget holds even when a
        # batch takes seconds (same CPU: each hand-off waits for a scheduler tick).
        nonlocal parent_incs
        end = time.perf_counter() + seconds
        for _ in range(n_batches * per):
            while True:
                lock.acquire()
                if counter.value % 2 == 0:
                    counter.value += 1
                    lock.release()
                    break
                lock.release()
            parent_incs += 1
            if time.perf_counter() >= end:
                break

    try:
        samples = collect(batch, a.samples, a.max_seconds, warm=warm,
                          timeout=HANDOFF_SAMPLE_TIMEOUT_S)
    finally:
        stop.value = 1
    kids.join()
    c = counter.value
    if c not in (2 * parent_incs - 1, 2 * parent_incs):
        raise BenchError(f"lock_handoff: counter {c} after {parent_incs} parent increments")
    note = ("one op = one lock hand-off: parent and child alternate "
            "acquire; if counter % 2 == parity: counter += 1; release on one mp.Lock and a "
            f"RawValue('q'); sample = time of {per} parent increments / {2 * per}")
    return "latency", 2 * per, note, samples, child_pinned


def case_array_copy(ctx, kids, cpu, a):
    pc = time.perf_counter_ns
    direction, size = ARRAY_CASES[a.case]
    n = size // 8
    arr = ctx.Array('d', n, lock=False)     # lock=False returns a RawArray
    mv = memoryview(arr).cast('B')
    if mv.nbytes != size:
        raise BenchError(f"array view has {mv.nbytes} bytes, expected {size}")
    pattern = bytes((i * 37 + 11) & 0xFF for i in range(256))   # a permutation of 0..255
    checks = (0, 1, size // 3, size // 2 + 7, size - 4096)

    if direction == "in":
        src = pattern * (size // 256)

        def one():
            t0 = pc()
            mv[:] = src
            t1 = pc()
            return t1 - t0

        def verify():
            for off in checks:
                if bytes(mv[off:off + 4096]) != src[off:off + 4096]:
                    raise BenchError(f"copy in: array differs from source at offset {off}")
        note = "one op = mv[:] = src, whole bytes src copied into mp.Array('d', n, lock=False) (a RawArray) via memoryview(arr).cast('B')"
    else:
        mv[:] = pattern * (size // 256)
        dst = bytearray(size)
        dview = memoryview(dst)

        def one():
            t0 = pc()
            dview[:] = mv
            t1 = pc()
            return t1 - t0

        def verify():
            for off in checks:
                if dst[off:off + 4096] != mv[off:off + 4096].tobytes():
                    raise BenchError(f"copy out: destination differs from array at offset {off}")
            if dst[:256] != pattern:
                raise BenchError("copy out: destination does not hold the pattern")
        note = ("one op = memoryview(dst)[:] = mv, whole mp.Array('d', n, lock=False) (a "
                "RawArray, via memoryview(arr).cast('B')) copied into a preallocated bytearray "
                "in one copy (dst[:] = mv would copy twice, through a temporary)")

    note += f"; {size >> 20} MiB per copy"
    samples = collect(one, a.samples, a.max_seconds, first_done=verify)
    return "latency", 1, note, samples, True


def _manager(ctx, cpu):
    """A started SyncManager whose server process is pinned to `cpu`; (manager, pinned)."""
    m = ctx.Manager()
    try:
        os.sched_setaffinity(m._process.pid, {cpu})
        pinned = True
    except (AttributeError, OSError) as e:
        log(f"cannot pin the manager's server to CPU {cpu} ({e}); continuing unpinned")
        pinned = False
    return m, pinned


def _mgr_case(ctx, cpu, a, make, op, check, what):
    """Single timed calls of op(obj, i) on a manager object made by make(manager)."""
    pc = time.perf_counter_ns
    m, pinned = _manager(ctx, cpu)
    try:
        obj = make(m)
        i = 0

        def one():
            nonlocal i
            i += 1
            t0 = pc()
            op(obj, i)
            return pc() - t0

        samples = collect(one, a.samples, a.max_seconds)
        check(obj, i)
    finally:
        m.shutdown()
    note = (f"one op = {what}; the manager's server process is the second process; "
            "sample = one call")
    return "latency", 1, note, samples, pinned


def _check_dict(d, n):
    if len(d) != 16:
        raise BenchError(f"manager dict has {len(d)} entries, expected 16")


def case_mgr_dict_get(ctx, kids, cpu, a):
    def op(d, i):
        if d[i & 15] != (i & 15) * 7 + 1:
            raise BenchError("manager dict returned a wrong value")
    return _mgr_case(ctx, cpu, a, lambda m: m.dict({k: k * 7 + 1 for k in range(16)}),
                     op, _check_dict, "d[k] on a Manager().dict() of 16 ints")


def case_mgr_dict_set(ctx, kids, cpu, a):
    def op(d, i):
        d[i & 15] = i
    return _mgr_case(ctx, cpu, a, lambda m: m.dict(), op, _check_dict,
                     "d[k] = v on a Manager().dict() of 16 ints")


def case_mgr_list_append(ctx, kids, cpu, a):
    def op(l, i):
        l.append(i)

    def check(l, n):
        if len(l) != n:
            raise BenchError(f"manager list has {len(l)} items after {n} appends")
    return _mgr_case(ctx, cpu, a, lambda m: m.list(), op, check,
                     "l.append(i) on a Manager().list()")


def _plain_case(a, body, what):
    pc = time.perf_counter_ns

    def batch():
        t0 = pc()
        body()
        return (pc() - t0) / 100

    samples = collect(batch, a.samples, a.max_seconds)
    note = f"one op = {what} in one process; sample = batch of 100 (loop unrolled x10) / 100"
    return "latency", 100, note, samples, True


def case_dict_get(ctx, kids, cpu, a):
    d = {k: k * 7 + 1 for k in range(16)}
    r10 = range(10)

    def body():
        for _ in r10:
            d[0]; d[1]; d[2]; d[3]; d[4]; d[5]; d[6]; d[7]; d[8]; d[9]
    return _plain_case(a, body, "d[k] on a dict of 16 ints")


def case_dict_set(ctx, kids, cpu, a):
    d = {}
    r10 = range(10)

    def body():
        for i in r10:
            d[0] = i; d[1] = i; d[2] = i; d[3] = i; d[4] = i
            d[5] = i; d[6] = i; d[7] = i; d[8] = i; d[9] = i
    return _plain_case(a, body, "d[k] = v on a dict of ints")


def case_list_append(ctx, kids, cpu, a):
    box = [[]]
    r10 = range(10)

    def body():
        l = box[0]
        if len(l) >= 1 << 16:
            l = box[0] = []
        ap = l.append
        for i in r10:
            ap(i); ap(i); ap(i); ap(i); ap(i); ap(i); ap(i); ap(i); ap(i); ap(i)
    return _plain_case(a, body, "l.append(i) on a list (ap = l.append hoisted)")


def _square(x):
    return x * x


def _unpin():
    try:
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    except (AttributeError, OSError):
        pass


POOL_WORKERS = 2
POOL_DEFAULT_BATCH = {"pool_map_c1": 20000, "pool_map_c1000": 200000, "pool_apply_async": 10000}


def case_pool(ctx, kids, cpu, a):
    _unpin()
    pc = time.perf_counter_ns
    pool = ctx.Pool(POOL_WORKERS)
    try:
        if a.case == "pool_apply":
            x = 0

            def one():
                nonlocal x
                x = (x + 1) & 0xffff
                t0 = pc()
                y = pool.apply(_square, (x,))
                t1 = pc()
                if y != x * x:
                    raise BenchError(f"apply({x}) gave {y}")
                return t1 - t0

            samples = collect(one, a.samples, a.max_seconds)
            note = "one pool.apply(square, (x,)) round trip on mp.Pool(2), fork context, unpinned"
            return "latency", 1, note, samples, True
        m = a.batch if a.batch not in (None, 1) else POOL_DEFAULT_BATCH[a.case]
        want = [x * x for x in range(m)]
        if a.case == "pool_apply_async":
            def one():
                t0 = pc()
                rs = [pool.apply_async(_square, (x,)) for x in range(m)]
                got = [r.get() for r in rs]
                t1 = pc()
                if got != want:
                    raise BenchError("apply_async gave wrong values")
                return (t1 - t0) / m
            note = f"ns per call: {m} pool.apply_async(square, (x,)) then every .get(), mp.Pool(2)"
        else:
            chunksize = 1 if a.case == "pool_map_c1" else 1000

            def one():
                t0 = pc()
                got = pool.map(_square, range(m), chunksize)
                t1 = pc()
                if got != want:
                    raise BenchError("map gave wrong values")
                return (t1 - t0) / m
            note = f"ns per item: pool.map(square, range({m}), chunksize={chunksize}) on mp.Pool(2)"
        samples = collect(one, max(1, a.samples // 100), a.max_seconds, timeout=300.0)
        return "throughput", m, note, samples, True
    finally:
        pool.terminate()
        pool.join()


CASES = {
    "mgr_dict_get": case_mgr_dict_get,
    "mgr_dict_set": case_mgr_dict_set,
    "mgr_list_append": case_mgr_list_append,
    "dict_get": case_dict_get,
    "dict_set": case_dict_set,
    "list_append": case_list_append,
    "queue_rt": case_queue_rt,
    "pipe_rt": case_pipe_rt,
    "queue_tp": case_queue_tp,
    "lock_uncontended": case_lock_uncontended,
    "lock_handoff": case_lock_handoff,
    "value_locked_inc": case_value_locked_inc,
    **{c: case_array_copy for c in ARRAY_CASES},
    **{c: case_pool for c in POOL_CASES},
}


def parse_args(argv):
    p = argparse.ArgumentParser(description="Python multiprocessing peer benchmarks for shm-bench")
    p.add_argument("--case", required=True, choices=ALL_CASES)
    p.add_argument("--samples", required=True, type=int)
    p.add_argument("--max-seconds", required=True, type=float)
    p.add_argument("--pin", required=True, choices=("split", "same", "single"))
    p.add_argument("--batch", type=int, default=None)
    a = p.parse_args(argv)
    if a.samples < 1:
        p.error("--samples must be >= 1")
    if not a.max_seconds > 0:
        p.error("--max-seconds must be > 0")
    if a.case in TWO_PROCESS_CASES and a.pin == "single":
        p.error(f"--pin single is for single-process cases; {a.case} needs split or same")
    if a.batch not in (None, 1) and a.case not in ("queue_tp", "lock_handoff") + POOL_CASES:
        log(f"--batch is only used by queue_tp and lock_handoff; ignored for {a.case}")
    return a


def main(argv):
    a = parse_args(argv)
    signal.signal(signal.SIGALRM, _on_alarm)
    ctx = mp.get_context("fork")
    kids = Children(ctx)
    try:
        parent_pinned = pin_to(0)
        child_cpu = 1 if a.pin == "split" else 0
        kind, batch, note, samples, child_pinned = CASES[a.case](ctx, kids, child_cpu, a)
    except BaseException as e:
        disarm()
        kids.kill_all()
        if isinstance(e, SystemExit):
            raise
        if isinstance(e, KeyboardInterrupt):
            log("interrupted")
        else:
            log(f"{a.case}: {type(e).__name__}: {e}")
        sys.stderr.flush()
        os._exit(1)
    result = {
        "case": a.case,
        "kind": kind,
        "samples_ns": samples,
        "batch": batch,
        "pinned": bool(parent_pinned and child_pinned),
        "python": platform.python_version(),
        "note": note,
    }
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
