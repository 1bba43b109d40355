"""Stand-alone measurement program, copied to a board with the models and a plan.

Usage: python runner.py PLAN.json OUT_DIR

Scope: for every point (model x mapping, i.e. CPU affinity + thread count or the GPU, x
DVFS level of the mapping's frequency domain), time single-image inference (SingleStream:
warm-up discarded, then at least `min_runs` inferences and `min_seconds` per point), keep
every raw sample, measure energy with the board's power backend, and write samples.csv,
summary.csv and board.json into OUT_DIR.

The points are measured in `rounds` interleaved, randomised rounds: each round visits every
point once, in an order drawn from the plan's seed and the round, setting affinity, threads
and frequency per visit, with a short warm-up (`visit_warmup`) and 1/rounds of the point's
runs and seconds. Rounds alternate between `workers` worker processes (this script with
--worker, started once each; one measures while the others wait), so a slow episode of the
host, or the state of one process and its thread pool, is spread over every point instead of
landing on whichever point was running. Every sample keeps its round, its position in the
round, its worker and the time its visit started: the host computes each median's
confidence interval from the rounds. It knows nothing about the network, groups or
accuracy (the plan carries opaque labels). Imports only the standard library,
numpy, the board's runtime and its sibling `power` module, so it runs on a
board without torch. Affinity is restored after each round, and every DVFS
value a worker wrote is restored at the end of each round, also on error and on SIGTERM/SIGINT/SIGHUP.

It stays one file (over the package's 400-line rule, the one exception): a board receives it
loose beside `power.py` and `dvfs.py` and runs it as a script, with nothing of dyndnn installed.
"""

import csv
import json
import os
import platform
import sys
import time

if __package__:  # imported on the host as dyndnn.boards.onboard.runner
    from . import dvfs, power
else:  # run as a script on a board: Python puts this file's folder, holding the copied siblings, first on sys.path
    import dvfs
    import power

# JetPack 4 boards run Python 3.6, which has no time.perf_counter_ns (3.7).
_now_ns = getattr(time, "perf_counter_ns", None) or (lambda: int(time.perf_counter() * 1e9))

__all__ = ["SAMPLE_FIELDS", "SUMMARY_FIELDS", "ISA_FLAGS", "NATIVE_BF16_FLAGS", "cpu_identity", "main"]

SAMPLE_FIELDS = ["label", "mapping", "frequency", "run_idx", "latency_ms", "round", "position", "worker", "t_s"]
SUMMARY_FIELDS = [
    "label", "mapping", "device", "dvfs_domain", "frequency", "frequency_readback", "threads", "cpus", "rounds", "n", "duration_s",
    "mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms",
    "power_backend", "power_w", "energy_mj", "energy_window", "power_samples",
]  # fmt: skip


def percentile(sorted_values, q):
    """Linear-interpolated percentile (numpy's default) of an ascending list."""
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarise(latencies_ms):
    s = sorted(latencies_ms)
    n = len(s)
    mean = sum(s) / n
    std = (sum((v - mean) ** 2 for v in s) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return {
        "n": n,
        "mean_ms": mean,
        "std_ms": std,
        "min_ms": s[0],
        "p50_ms": percentile(s, 50),
        "p90_ms": percentile(s, 90),
        "p99_ms": percentile(s, 99),
        "max_ms": s[-1],
    }


def resolve_cpus(cpus):
    available = sorted(os.sched_getaffinity(0))
    if cpus == "all":
        return available
    missing = sorted(set(cpus) - set(available))
    if missing:
        raise RuntimeError("mapping asks for CPUs %s, not available here (have %s)" % (missing, available))
    return list(cpus)


def read_frequency_khz(sysfs_root, cpu):
    path = os.path.join(sysfs_root, "sys/devices/system/cpu/cpu%d/cpufreq/scaling_cur_freq" % cpu)
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


HUGETLB = "glibc.malloc.hugetlb"


def tunables_env(huge_pages, environ=None):
    """The workers' environment: glibc's malloc asked (hugetlb=1) or told not (0) to madvise
    transparent huge pages for its large allocations, the other GLIBC_TUNABLES kept. Read at a
    process's start, so it is set for the workers, not in this process; glibc before 2.35 ignores it."""
    env = dict(os.environ if environ is None else environ)
    kept = [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t and not t.startswith(HUGETLB + "=")]
    env["GLIBC_TUNABLES"] = ":".join(kept + ["%s=%d" % (HUGETLB, 1 if huge_pages else 0)])
    return env


def thp_mode(sysfs_root):
    """The kernel's transparent-huge-page mode (always, madvise or never), None where unknown."""
    try:
        with open(os.path.join(sysfs_root, "sys/kernel/mm/transparent_hugepage/enabled")) as f:
            text = f.read()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else None


def anon_huge_kb():
    """Anonymous memory this process holds on huge pages (kB; None where /proc does not say)."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("AnonHugePages:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


PROVIDERS = {"cpu": "CPUExecutionProvider", "gpu": "CUDAExecutionProvider"}


def onnxruntime_infer(model_path, threads, device):
    """An ONNX Runtime session for one static-shape model; returns run(x) -> first output."""
    import onnxruntime as ort

    provider = PROVIDERS[device]
    if provider not in ort.get_available_providers():
        raise RuntimeError("device %s needs %s; this onnxruntime has %s" % (device, provider, ort.get_available_providers()))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(model_path, sess_options=opts, providers=[provider])
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})[0]


def torch_infer(model_path, threads, device):
    """A TorchScript model, for boards without an ONNX Runtime build; the GPU is
    synchronised so the clock reads finished work. Returns run(x) -> output."""
    import torch

    dev = "cuda" if device == "gpu" else "cpu"
    if dev == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device gpu needs a CUDA build of torch on the board")
    torch.set_num_threads(threads)
    model = torch.jit.load(model_path, map_location=dev).eval()

    def run(x):
        with torch.no_grad():
            out = model(torch.from_numpy(x).to(dev))
        if dev == "cuda":
            torch.cuda.synchronize()
        return out

    return run


RUNTIMES = {"onnxruntime": onnxruntime_infer, "torch": torch_infer}
RUNTIME_MODULES = {"onnxruntime": "onnxruntime", "torch": "torch"}


class TensorRTUnavailable(RuntimeError):
    pass


class TensorRT:
    """The Jetson GPU route: an engine built on the board from the same ONNX file with
    trtexec, cached by model sha256 and TensorRT version, timed by trtexec itself
    (--exportTimes: one latency per inference, host-to-device copies included)."""

    SEARCH = ("/usr/src/tensorrt/bin", "/usr/local/bin", "/usr/bin")

    def __init__(self, plan):
        self.cache = os.path.expanduser(plan.get("tensorrt_cache", "~/.cache/dyndnn/tensorrt"))
        self.trtexec = self._find(plan.get("trtexec"))
        self.version = self._version()
        self.workdir = "."

    def _find(self, configured):
        import shutil

        candidates = [configured] if configured else [shutil.which("trtexec")] + [os.path.join(d, "trtexec") for d in self.SEARCH]
        for c in candidates:
            if c and os.path.isfile(c) and os.access(c, os.X_OK):
                return c
        raise TensorRTUnavailable("TensorRT unavailable: no trtexec on PATH or in %s" % ", ".join(self.SEARCH))

    def _call(self, args, what):
        import subprocess

        proc = subprocess.run([self.trtexec] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)  # noqa: UP021 (text= is 3.7+)
        if proc.returncode != 0:
            tail = [line for line in proc.stdout.splitlines() if line.strip()][-3:]
            raise RuntimeError("trtexec %s failed (exit %d): %s" % (what, proc.returncode, " | ".join(tail)))
        return proc.stdout

    def _version(self):
        import re

        m = re.search(r"TensorRT v(\d+)", self._call(["--help"], "--help"))
        if not m:
            raise TensorRTUnavailable("TensorRT unavailable: %s does not print its version" % self.trtexec)
        return m.group(1)

    def engine(self, model_path):
        """Build (once) the engine of model_path; returns its cached path."""
        import hashlib

        with open(model_path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        path = os.path.join(self.cache, "%s-trt%s.engine" % (digest[:16], self.version))
        if not os.path.exists(path):
            if not os.path.isdir(self.cache):
                os.makedirs(self.cache)
            tmp = path + ".tmp%d" % os.getpid()
            try:
                self._call(["--onnx=%s" % model_path, "--saveEngine=%s" % tmp], "engine build")
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return path

    def time(self, engine, settings):
        """Latencies (ms) of at least min_runs inferences over at least min_seconds."""
        times = os.path.join(self.workdir, "trt-times.json")
        try:
            self._call(["--loadEngine=%s" % engine, "--warmUp=%d" % max(1, settings["warmup"]), "--iterations=%d" % settings["min_runs"],
                        "--duration=%g" % settings["min_seconds"], "--avgRuns=1", "--exportTimes=%s" % times], "timing")  # fmt: skip
            with open(times) as f:
                return [float(r["latencyMs"]) for r in json.load(f)]
        finally:
            if os.path.exists(times):
                os.unlink(times)


def time_model(infer, settings, meter=None):
    """Warm up, then run until both the minimum count and the minimum duration are reached;
    `meter`'s window (energy) covers exactly the timed inferences."""
    for _ in range(settings["warmup"]):
        infer()
    samples = []
    if meter is not None:
        meter.open_window()
    start = time.perf_counter()
    while len(samples) < settings["min_runs"] or time.perf_counter() - start < settings["min_seconds"]:
        t0 = _now_ns()
        infer()
        samples.append((_now_ns() - t0) / 1e6)
    if meter is not None:
        meter.close_window()
    return samples


# The instruction-set extensions inference and training runtimes dispatch on (x86: /proc/cpuinfo
# "flags"; ARM: "Features"): two CPUs that differ in these run the same model at different speeds
# (and train in different precisions), whatever their model-name strings say.
ISA_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni",
    "amx_tile", "amx_bf16", "amx_int8", "amx_fp16", "neon", "vfpv4", "asimd", "asimdhp", "asimddp", "fphp", "sve", "sve2", "bf16", "i8mm",
)  # fmt: skip
# The flags under which a CPU computes bf16 natively (train.precision: auto picks bf16 there).
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
# (fact, the /proc/cpuinfo keys it is read from: x86, then ARM)
CPU_FIELDS = (
    ("cpu_vendor", ("vendor_id", "CPU implementer")),
    ("cpu_family", ("cpu family", "CPU architecture")),
    ("cpu_model_id", ("model", "CPU part")),
    ("cpu_stepping", ("stepping", "CPU revision")),
)


def cpu_identity(cpuinfo="/proc/cpuinfo", logical=None):
    """What decides a CPU's speed, from /proc/cpuinfo: vendor, family, model and stepping (each the
    set of distinct values over the processors, so a big.LITTLE board lists both clusters), the
    ISA flags of ISA_FLAGS it has, and its logical CPUs. `cpu_identity` joins them into one
    string: two hosts are the same kind of host only when these strings are equal."""
    values = {fact: [] for fact, _ in CPU_FIELDS}
    flags = set()
    try:
        with open(cpuinfo) as f:
            text = f.read()
    except OSError:
        text = ""
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, value = (part.strip() for part in line.split(":", 1))
        if key in ("flags", "Features"):
            flags.update(value.split())
        for fact, keys in CPU_FIELDS:
            if key in keys and value not in values[fact]:
                values[fact].append(value)
    facts = {fact: ",".join(v) for fact, v in values.items()}
    facts["cpu_isa"] = " ".join(flag for flag in ISA_FLAGS if flag in flags)
    facts["cpu_logical"] = logical if logical is not None else os.cpu_count()
    known = any(facts[fact] for fact, _ in CPU_FIELDS)
    facts["cpu_identity"] = (
        "vendor {cpu_vendor} family {cpu_family} model {cpu_model_id} stepping {cpu_stepping}; isa {cpu_isa}; {cpu_logical} cpus".format(
            **facts
        )
        if known
        else ""
    )
    return facts


def board_facts(sysfs_root, runtime):
    import importlib

    import numpy

    cpu_model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware")):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    facts = {
        "hostname": platform.node(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpu_model": cpu_model,
        "cpus_available": sorted(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "runtime": runtime,
        "runtime_version": importlib.import_module(RUNTIME_MODULES[runtime]).__version__,
        "cpu0_frequency_khz": read_frequency_khz(sysfs_root, 0),
        "thp_mode": thp_mode(sysfs_root),
        "libc": " ".join(platform.libc_ver()).strip() or None,
    }
    facts.update(cpu_identity())
    if facts["cpu_identity"]:  # the runtime decides the kernels as much as the CPU does
        facts["cpu_identity"] += "; {} {}".format(runtime, facts["runtime_version"])
    return facts


def mapping_levels(mapping, plan, notes):
    """[(domain or None, requested level or None)] for the mapping's DVFS domain."""
    name = mapping.get("dvfs")
    if not name:
        return [(None, None)]
    spec = plan["dvfs"][name]
    domain = dvfs.Domain(name, spec["kind"], spec["path"], plan.get("sysfs_root", "/"))
    try:
        domain.check_writable()
        levels = domain.available() if spec.get("frequencies", "available") == "available" else list(spec["frequencies"])
    except dvfs.DvfsUnavailable as e:
        if spec.get("required"):
            raise
        notes.append(str(e))
        return [(None, None)]
    return [(domain, level) for level in levels]


def energy_per_inference(meter, samples):
    """(energy per inference in J, mean power in W, seconds integrated, what the window was).

    The meter's window covers exactly the timed inferences when the timer opened one; a
    TensorRT point is timed inside trtexec (engine load and warm-up in the same process),
    so there its mean power over the process is multiplied by the mean latency."""
    if meter.window_s:
        return meter.window_j / len(samples), meter.window_j / meter.window_s, meter.window_s, "timed inferences"
    mean_s = sum(samples) / len(samples) / 1e3
    return meter.power_w * mean_s, meter.power_w, meter.duration_s, "process mean power x mean latency"


def mapping_threads(mapping, cpus):
    return len(cpus) if mapping.get("threads", "cpus") == "cpus" else int(mapping["threads"])


def points(plan, trt, notes):
    """Every (mapping, DVFS level, model) the plan asks for, in plan order: dicts with the
    mapping, its CPUs and threads, the domain and level (or None) and the model. A mapping
    whose runtime is unavailable is skipped with a note (an error when it is `required`)."""
    out = []
    for mapping in plan["mappings"]:
        cpus = resolve_cpus(mapping["cpus"])
        runtime = mapping.get("runtime") or plan.get("runtime", "onnxruntime")
        if runtime == "tensorrt" and isinstance(trt, Exception):
            if mapping.get("required"):
                raise trt
            notes.append("mapping %s not measured: %s" % (mapping["name"], trt))
            continue
        for domain, level in mapping_levels(mapping, plan, notes):
            for model in plan["models"]:
                out.append(
                    {"mapping": mapping, "cpus": cpus, "threads": mapping_threads(mapping, cpus), "runtime": runtime,
                     "domain": domain, "level": level, "frequency": "fixed" if level is None else str(level), "model": model}
                )  # fmt: skip
    return out


def round_order(n, seed, rnd, shuffle=True):
    """The visiting order of round `rnd`: a permutation of range(n) drawn from (seed, round)."""
    import random

    order = list(range(n))
    if shuffle:
        random.Random(seed * 1000003 + rnd).shuffle(order)
    return order


def visit_settings(settings, first):
    """Warm-up and share of the point's runs and seconds for one visit of one round."""
    rounds = max(1, int(settings.get("rounds", 1)))
    warmup = settings["warmup"] if first else settings.get("visit_warmup", settings["warmup"])
    return {"warmup": warmup, "min_runs": -(-int(settings["min_runs"]) // rounds), "min_seconds": float(settings["min_seconds"]) / rounds}


class Worker:
    """Measures whole rounds of visits in this process: one inference session per (model,
    mapping), made at its first visit and kept, or with `fresh_sessions` made anew at every visit
    and dropped after it (a session's memory layout sets its speed by up to 19 % on a VM, so each
    visit then samples a new layout instead of a worker's one); affinity, threads and frequency set
    per visit; every frequency it set is restored at the end of each round."""

    def __init__(self, plan, x, reader, trt, worker_id=0, t0=None):
        self.plan, self.x, self.reader, self.trt, self.worker_id = plan, x, reader, trt, worker_id
        self.t0 = time.time() if t0 is None else t0
        self.points = points(plan, trt, [])
        self.runs = {}
        self.seen = set()  # points this worker has visited (their first visit warms up longer)
        self.huge_kb = None  # the most anonymous memory on huge pages seen right after a visit

    def _run(self, p):
        key = (p["model"]["label"], p["mapping"]["name"])
        if key not in self.runs:
            if p["runtime"] == "tensorrt":
                engine = self.trt.engine(p["model"]["path"])
                self.runs[key] = ("tensorrt", engine)
            else:
                run = RUNTIMES[p["runtime"]](p["model"]["path"], p["threads"], p["mapping"].get("device", "cpu"))
                self.runs[key] = ("session", run)
        return self.runs[key]

    def visit(self, p, settings, first, controller):
        """(latencies in ms, readback frequency, energy facts) of one visit of point p."""
        readback = (
            controller.set_level(p["domain"], p["level"])
            if p["domain"]
            else read_frequency_khz(self.plan.get("sysfs_root", "/"), p["cpus"][0])
        )
        kind, what = self._run(p)
        vs = visit_settings(settings, first or bool(settings.get("fresh_sessions")))  # a new session warms up in full
        try:
            with power.EnergyMeter(self.reader, self.plan["power"].get("rate_hz", 20)) as meter:
                samples = self.trt.time(what, vs) if kind == "tensorrt" else time_model(lambda: what(self.x), vs, meter)
            huge = anon_huge_kb()  # while the visit's session still holds its memory
            if huge is not None:
                self.huge_kb = max(huge, self.huge_kb or 0)
        finally:
            if settings.get("fresh_sessions") and kind == "session":
                del self.runs[(p["model"]["label"], p["mapping"]["name"])]  # the next visit makes a new session
        return samples, readback, energy_per_inference(meter, samples), meter.samples

    def round(self, rnd):
        """Every point once, in the round's order; returns (sample rows, visit rows)."""
        settings = self.plan["settings"]
        order = round_order(len(self.points), int(settings.get("seed", 0)), rnd, settings.get("shuffle", True))
        sample_rows, visit_rows = [], []
        original = os.sched_getaffinity(0)
        controller = dvfs.DvfsController()
        try:
            for position, i in enumerate(order):
                p = self.points[i]
                key = (p["model"]["label"], p["mapping"]["name"])
                first = key not in self.seen
                self.seen.add(key)
                os.sched_setaffinity(0, p["cpus"])
                t_s = round(time.time() - self.t0, 3)
                samples, readback, (energy_j, power_w, window_s, window), power_samples = self.visit(p, settings, first, controller)
                common = {"label": p["model"]["label"], "mapping": p["mapping"]["name"], "frequency": p["frequency"]}
                for v in samples:
                    sample_rows.append(dict(common, latency_ms=v, round=rnd, position=position, worker=self.worker_id, t_s=t_s))
                visit_rows.append(dict(common, point=i, n=len(samples), readback=readback, energy_j=energy_j * len(samples), backend=self.reader.name,
                                       power_w=power_w, window_s=window_s, window=window, power_samples=power_samples))  # fmt: skip
        finally:
            try:
                controller.restore()
            finally:
                os.sched_setaffinity(0, original)
        return sample_rows, visit_rows


def worker_main(plan_path, worker_id, t0):
    """`runner.py --worker PLAN ID T0`: measure the rounds named on stdin ("round R"), one JSON
    line of sample and visit rows on stdout per round; stop at "quit" or end of input."""
    import numpy as np

    with open(plan_path) as f:
        plan = json.load(f)
    reader, _ = open_power(plan["power"], plan.get("sysfs_root", "/"))
    x = np.random.default_rng(plan["settings"]["seed"]).standard_normal(plan["input_shape"]).astype(np.float32)
    trt = open_tensorrt(plan, os.path.dirname(os.path.abspath(plan_path)))
    out = sys.stdout
    sys.stdout = sys.stderr  # only this protocol on the pipe
    try:
        with dvfs.signals_raise():
            worker = Worker(plan, x, reader, trt, worker_id, t0)
            for line in sys.stdin:
                cmd = line.split()
                if not cmd or cmd[0] != "round":
                    break
                samples, visits = worker.round(int(cmd[1]))
                out.write(json.dumps({"samples": samples, "visits": visits, "anon_huge_kb": worker.huge_kb}) + "\n")
                out.flush()
    finally:
        reader.close()
    return 0


class Workers:
    """`n` worker processes (this script with --worker, started by the plan's `launch` command,
    the one that started the runner, else this interpreter, with `tunables_env(huge_pages)`), each
    kept alive for the whole measurement; round r goes to worker r % n, one round at a time.
    `huge_kb[w]`: the most memory worker w held on huge pages after a visit (kB)."""

    def __init__(self, plan_path, n, t0, launch=None, huge_pages=False):
        import subprocess

        cmd = list(launch or [sys.executable, os.path.abspath(__file__)]) + ["--worker", plan_path]
        env = tunables_env(huge_pages)
        self.procs = [
            subprocess.Popen(cmd + [str(w), repr(t0)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, universal_newlines=True, env=env)
            for w in range(n)
        ]
        self.huge_kb = [None] * n

    def round(self, rnd):
        proc = self.procs[rnd % len(self.procs)]
        proc.stdin.write("round %d\n" % rnd)
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("worker %d ended during round %d (exit %s)" % (rnd % len(self.procs), rnd, proc.wait()))
        reply = json.loads(line)
        self.huge_kb[rnd % len(self.procs)] = reply.get("anon_huge_kb")
        return reply["samples"], reply["visits"]

    def close(self, abort=False):
        """Let idle workers end (their input closes); on an error or a signal, stop them (a
        worker restores what it set of DVFS on SIGTERM)."""
        for proc in self.procs:
            try:
                proc.stdin.close()
            except OSError:
                pass
            if abort and proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except Exception:  # noqa: BLE001 (a stuck worker must not keep the board)
                proc.kill()


def summarise_points(plan_points, samples, visits):
    """One summary row per point from every visit of it: latencies pooled over the rounds,
    energy and power over every visit's window."""
    by_point = {}
    for v in visits:
        by_point.setdefault(v["point"], []).append(v)
    lat = {}
    for s in samples:
        lat.setdefault((s["label"], s["mapping"], s["frequency"]), []).append(s["latency_ms"])
    rows = []
    for i, p in enumerate(plan_points):
        vs = by_point.get(i, [])
        if not vs:
            continue
        key = (p["model"]["label"], p["mapping"]["name"], p["frequency"])
        n = sum(v["n"] for v in vs)
        measured = vs[0]["backend"] != "none"
        windows = [v["window_s"] for v in vs if v["window_s"]]
        energy_j = sum(v["energy_j"] for v in vs)
        rows.append(
            dict(
                summarise(lat[key]),
                label=key[0], mapping=key[1], device=p["mapping"].get("device", "cpu"), dvfs_domain=p["domain"].name if p["domain"] else "",
                frequency=key[2], frequency_readback=vs[-1]["readback"], threads=p["threads"], cpus=" ".join(map(str, p["cpus"])),
                rounds=len(vs), duration_s=sum(windows) if windows else None,
                power_backend=vs[0]["backend"], power_w=(sum(v["power_w"] * v["n"] for v in vs) / n) if measured else None,
                energy_mj=energy_j / n * 1e3 if measured else None, energy_window=vs[0]["window"] if measured else "",
                power_samples=sum(v["power_samples"] for v in vs),
            )
        )  # fmt: skip
    return rows


def measure(plan, plan_path, trt, notes):
    """Every point of the plan in interleaved, randomised rounds over the worker processes;
    returns (sample rows, summary rows, facts of the workers' memory)."""
    plan_points = points(plan, trt, notes)
    settings = plan["settings"]
    t0 = time.time()
    huge_pages = bool(settings.get("huge_pages"))
    workers = Workers(plan_path, max(1, int(settings.get("workers", 1))), t0, plan.get("launch"), huge_pages)
    sample_rows, visit_rows = [], []
    done = False
    try:
        for rnd in range(max(1, int(settings.get("rounds", 1)))):
            samples, visits = workers.round(rnd)
            sample_rows += samples
            visit_rows += visits
        done = True
    finally:
        workers.close(abort=not done)
    run_idx = {}
    for s in sample_rows:  # each point's runs numbered in the order they were timed
        key = (s["label"], s["mapping"], s["frequency"])
        s["run_idx"] = run_idx.get(key, 0)
        run_idx[key] = s["run_idx"] + 1
    memory = {
        "huge_pages": "requested" if huge_pages else "not requested",
        "workers_huge_pages_mb": [None if kb is None else round(kb / 1024.0, 1) for kb in workers.huge_kb],
    }
    return sample_rows, summarise_points(plan_points, sample_rows, visit_rows), memory


def write_outputs(plan, out):
    """Each model's outputs on the plan's parity inputs (one image per run, CPU, one
    thread), saved as out/outputs.npz (key m<i> = plan model i) for the host to check."""
    import numpy as np

    parity = plan["parity"]
    xs = np.load(parity["inputs"])
    make = RUNTIMES[plan.get("runtime", "onnxruntime")]
    arrays = {}
    for i, m in enumerate(plan["models"]):
        run = make(m["path"], 1, "cpu")
        outs = [run(x) for x in xs]  # xs: (n, 1, C, H, W), one static-shape image per run
        arrays["m%d" % i] = np.concatenate([o.detach().cpu().numpy() if hasattr(o, "detach") else np.asarray(o) for o in outs])
    tmp = os.path.join(out, "outputs.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, os.path.join(out, parity.get("output", "outputs.npz")))


def open_tensorrt(plan, out):
    """The TensorRT route if some mapping asks for it: the helper, or why it is unavailable."""
    if not any(m.get("runtime") == "tensorrt" for m in plan["mappings"]):
        return None
    try:
        trt = TensorRT(plan)
    except TensorRTUnavailable as e:
        return e
    trt.workdir = out
    return trt


def write_csv(path, fields, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def open_power(cfg, sysfs_root):
    try:
        return power.make_reader(cfg, sysfs_root), None
    except power.PowerUnavailable as e:
        if cfg.get("required"):
            raise
        return power.NoPower(), str(e)


def board_lock(path):
    """Hold an exclusive lock for the whole run: one measurement per board at a time,
    whichever host or workflow started it. Waits for a running measurement to end."""
    import fcntl

    f = open(path, "a")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        sys.stderr.write("waiting for another measurement on this board (%s)\n" % path)
        fcntl.flock(f, fcntl.LOCK_EX)
    return f


class HostLoad:
    """CPU time the rest of the host takes while we measure: from /proc/stat (busy jiffies of
    every CPU) minus this process's own CPU time, over the wall time x CPUs; plus the load
    averages. Where /proc/stat is absent (not Linux) only the load averages are recorded."""

    def __init__(self):
        self.start = self._read()

    @staticmethod
    def _read():
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # all but idle and iowait
        own = sum(os.times()[:4])
        return time.time(), busy / float(os.sysconf("SC_CLK_TCK")), own

    def others_share(self):
        """Share of all CPUs' time taken by other processes since start (None when unknown)."""
        end = self._read()
        if self.start is None or end is None or end[0] <= self.start[0]:
            return None
        cpus = os.cpu_count() or 1
        others = (end[1] - self.start[1]) - (end[2] - self.start[2])
        return max(0.0, others / ((end[0] - self.start[0]) * cpus))


def load_facts(load):
    facts = {"host_load_avg": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None}
    share = load.others_share()
    facts["host_others_cpu_share"] = None if share is None else round(share, 4)
    return facts


def check_idle(plan):
    """With settings.max_others_share set and refuse_busy on, refuse to measure a busy host:
    sample the other processes' CPU share over settings.busy_probe_s first."""
    settings = plan["settings"]
    limit = settings.get("max_others_share")
    if limit is None or not settings.get("refuse_busy"):
        return
    probe = HostLoad()
    time.sleep(settings.get("busy_probe_s", 1.0))
    share = probe.others_share()
    if share is not None and share > limit:
        raise RuntimeError("host busy: other processes took %.0f %% of the CPUs' time (profile.max_others_share %.0f %%); "
                           "stop them or set profile.refuse_busy: false" % (100 * share, 100 * limit))  # fmt: skip


def main(argv):
    if len(argv) == 5 and argv[1] == "--worker":
        return worker_main(argv[2], int(argv[3]), float(argv[4]))
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1]) as f:
        plan = json.load(f)
    out = argv[2]
    os.makedirs(out, exist_ok=True)
    sysfs_root = plan.get("sysfs_root", "/")
    reader, power_note = open_power(plan["power"], sysfs_root)
    lock = board_lock(plan.get("lock", "/tmp/dyndnn-board.lock"))
    sample_rows, summary_rows, notes, memory = [], [], [], {}
    check_idle(plan)
    load = HostLoad()
    trt = open_tensorrt(plan, out)
    try:
        with dvfs.signals_raise():  # the workers set frequencies and restore them after each round, also when stopped
            if plan.get("parity"):
                write_outputs(plan, out)
            sample_rows, summary_rows, memory = measure(plan, os.path.abspath(argv[1]), trt, notes)
    finally:
        reader.close()
        lock.close()
    facts = board_facts(sysfs_root, plan.get("runtime", "onnxruntime"))
    facts.update(load_facts(load))
    facts.update(memory)
    facts["power_backend"] = reader.name
    facts["power_note"] = power_note or ""
    facts["dvfs"] = "controlled" if any(r["dvfs_domain"] for r in summary_rows) else "fixed"
    facts["dvfs_note"] = "; ".join(sorted(n for n in set(notes) if not n.startswith("mapping ")))
    facts["skipped_note"] = "; ".join(sorted(n for n in set(notes) if n.startswith("mapping ")))
    if trt is not None:
        facts["tensorrt"] = "unavailable: %s" % trt if isinstance(trt, Exception) else "TensorRT %s (%s)" % (trt.version, trt.trtexec)
    write_csv(os.path.join(out, "samples.csv"), SAMPLE_FIELDS, sample_rows)
    write_csv(os.path.join(out, "summary.csv"), SUMMARY_FIELDS, summary_rows)
    with open(os.path.join(out, "board.json"), "w") as f:
        json.dump(facts, f, indent=2)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Exception as e:  # the host reports the last stderr line; keep the traceback above it
        import traceback

        traceback.print_exc()
        sys.stderr.write("runner error: %s: %s\n" % (type(e).__name__, e))
        sys.exit(1)
