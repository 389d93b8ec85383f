"""A bench worker: one process sending its share of the plan and counting what comes back.

    python -m resolver.cli.bench.sender PLAN K N

Its own small sender, not the resolver's engine: connected non-blocking UDP sockets,
prebuilt query packets, replies matched by socket, message id and question, one epoll
loop; no window of its own beyond the plan's, no retries unless the plan asks, no
decoding unless answers are checked. The protocol with the parent is JSON lines: the
worker prints `{"ready": ...}` when its sockets are open, waits for `go START` on stdin
(START on the system-wide monotonic clock), then prints every interval's tally as it
ends, every ramp step's once all its queries are done, and `{"done": ...}` last. `stop`
on stdin (or its end) stops the sending; what is in flight is still waited for.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import select
import signal
import socket
import sys
import time
import zlib
from collections import deque
from pathlib import Path
from typing import Any, TextIO

from resolver.cli.bench.expect import outcome
from resolver.cli.bench.plan import Mode, Plan
from resolver.cli.bench.stats import BUCKETS, Histogram, Tally
from resolver.codec import BadReply, build_query, decode_reply

__all__ = ["Worker", "main"]

_FREE, _WAITING, _EXPIRED = 0, 1, 2  # the state of a message id of a socket
_IDS = 65536
_RCODES = ("NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED")
_EXAMPLES = 5  # wrong answers described in full
_SNDBUF = _RCVBUF = 4 << 20
#: A query due sooner than this is waited for by looking again, not by sleeping.
_SPIN = 20e-6
#: A query sent this much after its scheduled time: its ramp step measured the client.
BEHIND = 0.010


def _rcode_name(code: int) -> str:
    return _RCODES[code] if code < len(_RCODES) else f"RCODE{code}"


class Worker:
    """One worker's run of a plan (see the module docstring)."""

    def __init__(self, plan: Plan, k: int, out: TextIO) -> None:
        self.plan, self.k, self.out = plan, k, out
        self.sockets: list[socket.socket] = []
        self.server_of: list[int] = []  # socket -> index of its server
        for _ in range(plan.sockets + plan.spare_sockets):
            for s, (host, port) in enumerate(plan.servers):
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_DGRAM)
                for option, size in ((socket.SO_SNDBUF, _SNDBUF), (socket.SO_RCVBUF, _RCVBUF)):
                    with contextlib.suppress(OSError):  # the default buffer then
                        sock.setsockopt(socket.SOL_SOCKET, option, size)
                sock.connect((host, port))
                sock.setblocking(False)
                self.sockets.append(sock)
                self.server_of.append(s)
        # The packet of each question without its 2-octet id, and the question section
        # a reply must echo (name, type, class IN).
        edns = plan.edns
        self.templates = [
            build_query(0, wire, qtype, edns_payload=edns)[2:] for wire, qtype in plan.questions
        ]
        self.echo = [wire + qtype.to_bytes(2, "big") + b"\0\1" for wire, qtype in plan.questions]
        self.stop = False
        self.examples: list[dict[str, Any]] = []
        self.calibrated: dict[int, str] = {}

    def emit(self, record: dict[str, Any]) -> None:
        self.out.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.out.flush()

    def run(self, start: float, control: int | None) -> None:
        """Send from `start` (monotonic clock) until the plan or `stop` ends it, then wait
        for what is in flight and for late replies; report as it goes. `control`: a file
        descriptor whose line `stop` (or end) stops the sending.

        One loop, its state in locals (this is the hot path): send what is due (retries
        first), wait for replies or the next due time, match replies, expire timeouts.
        """
        plan = self.plan
        schedule = plan.schedule
        open_loop = schedule.open_loop
        stepping = schedule.mode is Mode.RAMP
        workers, k = plan.workers, self.k
        sequence = plan.sequence
        pass_length = len(sequence)
        total = schedule.queries(pass_length)
        duration = schedule.duration
        end_at = start + duration if duration is not None and not open_loop else None
        timeout, tries, late = plan.timeout, plan.tries, plan.late
        interval = plan.interval
        expected = plan.expected
        calibrate = plan.calibrate
        checking = expected is not None or calibrate
        window = schedule.window // workers + (k < schedule.window % workers)
        templates, echo = self.templates, self.echo
        socks = self.sockets
        nsocks = len(socks)
        nservers = len(plan.servers)
        rotation = plan.sockets * nservers  # the sockets queries go round
        server_of = self.server_of
        sends = [s.send for s in socks]
        recvs = [s.recv for s in socks]
        size = 65535 if checking else 4096  # a reply cut short cannot be checked
        fd_index = {s.fileno(): i for i, s in enumerate(socks)}
        poller = select.epoll()
        for s in socks:
            poller.register(s.fileno(), select.EPOLLIN)
        if control is not None:
            poller.register(control, select.EPOLLIN)
        alarm = Alarm() if open_loop else None
        if alarm is not None and alarm.fd >= 0:
            poller.register(alarm.fd, select.EPOLLIN)
        else:
            alarm = None
        armed = 0.0  # when the alarm is set to fire (0: not set)
        ids = [id_.to_bytes(2, "big") for id_ in range(_IDS)]
        free = [deque(range(_IDS)) for _ in socks]
        # Per slot (socket * 65536 + id): its state, and the query it carries as
        # (question, start, number, tries made, step); start is the scheduled time in open
        # loop and the first send in closed loop. An expiry entry holds that same tuple:
        # still there, the attempt is still the one the entry was made for.
        state = bytearray(nsocks * _IDS)
        s_info: list[tuple[int, float, int, int, int] | None] = [None] * (nsocks * _IDS)
        expiring: deque[tuple[float, int, tuple[int, float, int, int, int]]] = deque()
        releasing: deque[tuple[float, int]] = deque()  # (when, slot) of expired ids
        resend: deque[tuple[int, float, int, int, int]] = deque()  # retries due

        clock = time.monotonic
        cpu_clock = time.process_time

        # This interval's counters (flushed into a Tally at each boundary).
        sent = retried = answered = lost = late_replies = unexpected = 0
        truncated = checked = wrong = send_full = no_id = unreachable = send_errors = 0
        rc = [0] * 16
        hist = [0] * BUCKETS
        hmax = 0.0
        lag = [0] * BUCKETS
        lag_max = 0.0
        srv_sent = [0] * nservers
        srv_answered = [0] * nservers
        srv_lost = [0] * nservers
        # Ramp steps: the counters of the queries scheduled in each.
        n_steps = len(schedule.steps)
        firsts = schedule.firsts
        st_sent, st_answered, st_lost = [0] * n_steps, [0] * n_steps, [0] * n_steps
        st_open = [0] * n_steps  # queries of the step neither answered nor lost yet
        st_behind = [0] * n_steps  # queries sent more than BEHIND after their time
        st_hist: list[list[int]] = [[] for _ in range(n_steps)]
        st_rc = [[0] * 16 for _ in range(n_steps)]
        st_max = [0.0] * n_steps
        st_reported = 0
        step = 0  # the step of the next query
        step_end = firsts[1] if stepping else 0

        local = 0  # queries this worker has sent: picks the socket
        outstanding = 0
        sending = True
        interval_index = 0
        tick_end = start + interval
        cpu_mark = cpu_clock()
        wall_mark = start
        last_reply = start

        def flush(now: float, final: bool = False) -> None:
            nonlocal sent, retried, answered, lost, late_replies, unexpected, truncated
            nonlocal checked, wrong, send_full, no_id, unreachable, send_errors
            nonlocal rc, hist, hmax, lag, lag_max
            nonlocal srv_sent, srv_answered, srv_lost, interval_index, cpu_mark, wall_mark
            tally = Tally()
            c = tally.counts
            c["sent"], c["retried"], c["answered"], c["lost"] = sent, retried, answered, lost
            c["late"], c["unexpected"], c["truncated"] = late_replies, unexpected, truncated
            c["checked"], c["wrong"], c["send_full"], c["no_id"] = checked, wrong, send_full, no_id
            c["unreachable"], c["send_errors"] = unreachable, send_errors
            tally.rcodes.update({_rcode_name(code): n for code, n in enumerate(rc) if n})
            tally.latency = Histogram(hist, hmax)
            tally.lag = Histogram(lag, lag_max)
            for i, (host, port) in enumerate(plan.servers):
                tally.servers[_server_name(host, port)] = [
                    srv_sent[i],
                    srv_answered[i],
                    srv_lost[i],
                ]
            cpu = cpu_clock()
            tally.cpu, tally.wall = cpu - cpu_mark, now - wall_mark
            cpu_mark, wall_mark = cpu, now
            record: dict[str, Any] = {"interval": interval_index, "tally": tally.to_json()}
            if final:
                record["end"] = now - start
            self.emit(record)
            interval_index += 1
            sent = retried = answered = lost = late_replies = unexpected = 0
            truncated = checked = wrong = send_full = no_id = unreachable = send_errors = 0
            rc = [0] * 16
            hist = [0] * BUCKETS
            hmax = 0.0
            lag = [0] * BUCKETS
            lag_max = 0.0
            srv_sent = [0] * nservers
            srv_answered = [0] * nservers
            srv_lost = [0] * nservers

        def report_steps() -> None:
            """Each step whose queries are all sent and all answered or lost."""
            nonlocal st_reported
            while st_reported < n_steps and (step > st_reported or not sending):
                i = st_reported
                if st_open[i]:
                    break
                tally = Tally()
                tally.counts.update(
                    sent=st_sent[i], answered=st_answered[i], lost=st_lost[i], behind=st_behind[i]
                )
                if st_hist[i]:
                    tally.latency = Histogram(st_hist[i], st_max[i])
                tally.rcodes.update({_rcode_name(c): n for c, n in enumerate(st_rc[i]) if n})
                self.emit({"step": i, "tally": tally.to_json()})
                st_hist[i] = []
                st_reported += 1

        dues = schedule.dues(k, workers, pass_length) if open_loop else None
        number, due = k, 0.0  # the next query, and (open loop) when it is due
        if dues is not None:
            upcoming = next(dues, None)
            if upcoming is None:
                sending = False
            else:
                number, due = upcoming[0], start + upcoming[1]
        elif total is not None and number >= total:
            sending = False
        wait_start = start - clock()
        if wait_start > 0:
            time.sleep(wait_start)

        while True:
            now = clock()
            while now >= tick_end:
                flush(tick_end)
                tick_end += interval
            if sending and (self.stop or (end_at is not None and now >= end_at)):
                sending = False
            blocked = False  # a full socket buffer, or no free id: try again a moment later
            # Retries first, then new queries, as the schedule or the window allows.
            while resend and (open_loop or outstanding < window):
                info = resend[0]
                sock_i = local % rotation
                queue = free[sock_i]
                if not queue:
                    sock_i = _spare(free, sock_i, nservers)
                    if sock_i < 0:
                        no_id += 1
                        blocked = True
                        break
                    queue = free[sock_i]
                id_ = queue.popleft()
                try:
                    sends[sock_i](ids[id_] + templates[info[0]])
                except BlockingIOError:
                    queue.appendleft(id_)
                    send_full += 1
                    blocked = True
                    break
                except ConnectionRefusedError:  # an ICMP error of an earlier send
                    queue.appendleft(id_)
                    unreachable += 1
                    continue
                except OSError as exc:
                    queue.appendleft(id_)
                    if exc.errno == errno.ENOBUFS:
                        send_full += 1
                        blocked = True
                        break
                    resend.popleft()  # the retry could not go out: the query is lost
                    send_errors += 1
                    lost += 1
                    srv_lost[server_of[sock_i]] += 1
                    if stepping:
                        st_open[info[4]] -= 1
                        st_lost[info[4]] += 1
                    continue
                resend.popleft()
                slot = sock_i * _IDS + id_
                state[slot] = _WAITING
                s_info[slot] = info
                expiring.append((now + timeout, slot, info))
                retried += 1
                outstanding += 1
                local += 1
            while sending:
                if open_loop:
                    if due > now:
                        break
                    begun = due
                elif outstanding >= window:
                    break
                else:
                    begun = now
                sock_i = local % rotation
                queue = free[sock_i]
                if not queue:
                    sock_i = _spare(free, sock_i, nservers)
                    if sock_i < 0:
                        no_id += 1
                        if not open_loop:
                            blocked = True
                            break
                        sock_i = -1  # skipped: the schedule goes on without it
                    else:
                        queue = free[sock_i]
                if sock_i >= 0:
                    question = sequence[number % pass_length]
                    id_ = queue.popleft()
                    try:
                        sends[sock_i](ids[id_] + templates[question])
                    except BlockingIOError:
                        queue.appendleft(id_)
                        send_full += 1
                        blocked = True
                        break
                    except ConnectionRefusedError:  # an ICMP error of an earlier send
                        queue.appendleft(id_)
                        unreachable += 1
                        continue
                    except OSError as exc:
                        queue.appendleft(id_)
                        if exc.errno == errno.ENOBUFS:
                            send_full += 1
                            blocked = True
                            break
                        send_errors += 1  # not sent (a firewall, no route): skipped
                        sock_i = -1
                if sock_i >= 0:
                    if stepping:
                        while number >= step_end:
                            step += 1
                            step_end = firsts[step + 1]
                        st_sent[step] += 1
                        st_open[step] += 1
                    slot = sock_i * _IDS + id_
                    state[slot] = _WAITING
                    info = s_info[slot] = (question, begun, number, 1, step)
                    expiring.append((now + timeout, slot, info))
                    srv_sent[server_of[sock_i]] += 1
                    sent += 1
                    outstanding += 1
                    local += 1
                    if open_loop:
                        late_by = now - begun
                        us = int(late_by * 1e6)
                        if us < 128:
                            lag[us] += 1
                        else:
                            e = us.bit_length() - 7
                            b = (e << 6) + (us >> e)
                            lag[b if b < BUCKETS else BUCKETS - 1] += 1
                        if late_by > lag_max:
                            lag_max = late_by
                        if stepping and late_by > BEHIND:
                            st_behind[step] += 1
                if dues is not None:
                    upcoming = next(dues, None)
                    if upcoming is None:
                        sending = False
                    else:
                        number, due = upcoming[0], start + upcoming[1]
                else:
                    number += workers
                    if total is not None and number >= total:
                        sending = False
            if stepping and not sending:
                step = n_steps
            draining = not sending and not outstanding and not resend
            if draining and (not releasing or releasing[-1][0] <= now):
                break  # done, and no late reply is still counted
            # Wait for a reply, the next due query, the next timeout or the tick's end.
            wait = tick_end - now
            if expiring:
                wait = min(wait, expiring[0][0] - now)
            if sending:
                if open_loop and due - now < wait:
                    wait = due - now
                    if wait < _SPIN:
                        wait = 0.0  # due at once: look again rather than sleep
                    elif alarm is not None:
                        if armed != due:
                            alarm.set(due)  # epoll wakes then, not up to 1 ms later
                            armed = due
                        wait += 0.002  # epoll's own timeout: only if the alarm fails
                elif not open_loop and end_at is not None:
                    wait = min(wait, end_at - now)
            if draining:
                wait = min(wait, releasing[-1][0] - now)
            if blocked:
                wait = min(wait, 0.001)
            elif resend and (open_loop or outstanding < window):
                wait = 0.0
            events = poller.poll(wait if wait > 0 else 0.0)
            now = clock()
            for fd, _ in events:
                sock_i = fd_index.get(fd, -1)
                if sock_i < 0:
                    if alarm is not None and fd == alarm.fd:
                        alarm.clear()
                        armed = 0.0
                    elif _control_says_stop(fd):
                        self.stop = True
                    continue
                recv = recvs[sock_i]
                base = sock_i * _IDS
                while True:
                    try:
                        reply = recv(size)
                    except BlockingIOError:
                        break
                    except ConnectionRefusedError:
                        unreachable += 1
                        continue
                    if len(reply) < 12 or not reply[2] & 0x80:
                        unexpected += 1
                        continue
                    slot = base + (reply[0] << 8 | reply[1])
                    status = state[slot]
                    held = s_info[slot]
                    if status == _FREE or held is None:
                        unexpected += 1
                        continue
                    question = held[0]
                    asked = echo[question]
                    if not reply.startswith(asked, 12) and (
                        reply[12 : 12 + len(asked)].lower() != asked.lower()
                    ):
                        unexpected += 1
                        continue
                    if status == _EXPIRED:
                        late_replies += 1
                        continue
                    # An answer, in time.
                    state[slot] = _FREE
                    s_info[slot] = None
                    free[sock_i].append(slot - base)
                    outstanding -= 1
                    answered += 1
                    last_reply = now
                    srv_answered[server_of[sock_i]] += 1
                    elapsed = now - held[1]
                    us = int(elapsed * 1e6)
                    if us < 128:
                        b = us
                    else:
                        e = us.bit_length() - 7
                        b = (e << 6) + (us >> e)
                        if b >= BUCKETS:
                            b = BUCKETS - 1
                    hist[b] += 1
                    if elapsed > hmax:
                        hmax = elapsed
                    code = reply[3] & 0x0F
                    rc[code] += 1
                    if stepping:
                        i = held[4]
                        st_open[i] -= 1
                        st_answered[i] += 1
                        st_rc[i][code] += 1
                        if not st_hist[i]:
                            st_hist[i] = [0] * BUCKETS
                        st_hist[i][b] += 1
                        if elapsed > st_max[i]:
                            st_max[i] = elapsed
                    if reply[2] & 0x02:
                        truncated += 1
                    elif checking:
                        got = self._outcome(reply, question)
                        if calibrate:
                            self.calibrated[question] = got
                        elif expected is not None and (want := expected[question]) >= 0:
                            checked += 1
                            if zlib.crc32(got.encode()) != want:
                                wrong += 1
                                if len(self.examples) < _EXAMPLES:
                                    self.examples.append({"question": question, "got": got})
            # Timeouts: a lost query, or another try.
            while expiring and expiring[0][0] <= now:
                _, slot, info = expiring.popleft()
                if s_info[slot] is not info or state[slot] != _WAITING:
                    continue  # answered (and maybe the id taken again) since
                state[slot] = _EXPIRED
                releasing.append((now + late, slot))
                outstanding -= 1
                question, begun, qnumber, made, i = info
                if made < tries:
                    resend.append((question, begun, qnumber, made + 1, i))
                    continue
                lost += 1
                srv_lost[server_of[slot // _IDS]] += 1
                if stepping:
                    st_open[i] -= 1
                    st_lost[i] += 1
            while releasing and (releasing[0][0] <= now or not free[releasing[0][1] // _IDS]):
                _, slot = releasing.popleft()
                state[slot] = _FREE
                s_info[slot] = None
                free[slot // _IDS].append(slot % _IDS)
            if stepping and st_reported < n_steps:
                report_steps()
        flush(clock(), final=True)
        if stepping:
            report_steps()
        done: dict[str, Any] = {
            "done": True,
            "last_reply": last_reply - start,
            "examples": self.examples,
        }
        if calibrate:
            done["calibrated"] = {str(q): got for q, got in self.calibrated.items()}
        self.emit(done)

    def _outcome(self, reply: bytes, question: int) -> str:
        wire, qtype = self.plan.questions[question]
        try:
            decoded = decode_reply(reply, wire, qtype)
        except BadReply as exc:
            return f"UNDECODABLE|{exc}|"
        return outcome(decoded.rcode, decoded.answers, decoded.cnames, qtype)


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


class Alarm:
    """A Linux timerfd set to an absolute time of the monotonic clock, for the epoll loop:
    epoll's own timeout counts whole milliseconds (a query due in 0.2 ms would go out up
    to 0.8 ms late, and that lateness would count as latency), the timer microseconds.
    Without timerfd (`fd` -1) the loop keeps epoll's timeout."""

    _CLOCK_MONOTONIC, _ABSTIME, _FLAGS = 1, 1, os.O_NONBLOCK | os.O_CLOEXEC
    _PR_SET_TIMERSLACK, _SLACK_NS = 29, 1000  # timers of this process: 1 µs late at most

    def __init__(self) -> None:
        self.fd = -1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            self._settime = libc.timerfd_settime
            fd = int(libc.timerfd_create(self._CLOCK_MONOTONIC, self._FLAGS))
        except (OSError, AttributeError):
            return
        self.fd = fd
        self._spec = _Itimerspec()
        with contextlib.suppress(AttributeError):
            libc.prctl(self._PR_SET_TIMERSLACK, self._SLACK_NS, 0, 0, 0)

    def set(self, when: float) -> None:
        """Fire at `when` (time.monotonic's clock)."""
        seconds = int(when)
        nanoseconds = int((when - seconds) * 1e9) + 1  # never before `when`
        self._spec.it_value.tv_sec = seconds + nanoseconds // 1_000_000_000
        self._spec.it_value.tv_nsec = nanoseconds % 1_000_000_000
        self._settime(self.fd, self._ABSTIME, ctypes.byref(self._spec), None)

    def clear(self) -> None:
        """Take the expiry off the descriptor (it stays readable until then)."""
        with contextlib.suppress(BlockingIOError):
            os.read(self.fd, 8)


def _spare(free: list[deque[int]], taken: int, nservers: int) -> int:
    """Another socket to the same server as socket `taken` with a free id, or -1."""
    for i in range(taken % nservers, len(free), nservers):
        if free[i]:
            return i
    return -1


def _server_name(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _control_says_stop(fd: int) -> bool:
    """Whether the parent's control pipe says stop (a `stop` line, or its end)."""
    try:
        data = os.read(fd, 4096)
    except BlockingIOError:
        return False
    return not data or b"stop" in data


def _read_line(fd: int) -> str:
    """One line from `fd`, read unbuffered (what follows stays in the pipe)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


def main(argv: list[str] | None = None) -> int:
    """The worker process: `PLAN K N`; see the module docstring."""
    args = sys.argv[1:] if argv is None else argv
    path, k = Path(args[0]), int(args[1])
    # Ctrl-C reaches the whole process group: the parent decides and says `stop`.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    plan = Plan.load(path)
    out = sys.stdout
    try:
        worker = Worker(plan, k, out)
    except OSError as exc:
        out.write(json.dumps({"error": f"cannot open a socket: {exc.strerror or exc}"}) + "\n")
        return 1
    worker.emit({"ready": k})
    control = sys.stdin.fileno()
    line = _read_line(control).split()
    if len(line) != 2 or line[0] != "go":
        return 0  # the parent gave up before the start
    os.set_blocking(control, False)
    try:
        worker.run(float(line[1]), control)
    except OSError as exc:
        worker.emit({"error": f"sending failed: {exc.strerror or exc}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
