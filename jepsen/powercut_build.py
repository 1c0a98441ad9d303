"""Build and drive the power-cut layer (jepsen/powercut/, design in powercut.h
and jepsen/README.md) from Python: compile it, init a state directory, apply a
cut."""

import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "powercut")
SOURCES = ("powercut.c", "pc_common.c", "pc_tool.c", "powercut.h")
WARN = ["-std=gnu17", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-D_GNU_SOURCE", "-O2", "-g"]


def default_build_dir():
    base = os.environ.get("SKIFF_BUILD_DIR") or "/tmp/build-jepsen"
    return os.path.join(base, "jepsen-powercut")


def build(out_dir=None, cc=None):
    """Compile libpowercut.so and powercut-tool into out_dir (when out of date).
    Returns (library path, tool path); raises RuntimeError with the compiler's
    output on failure."""
    out_dir = out_dir or default_build_dir()
    cc = cc or os.environ.get("CC") or "cc"
    os.makedirs(out_dir, exist_ok=True)
    lib = os.path.join(out_dir, "libpowercut.so")
    tool = os.path.join(out_dir, "powercut-tool")
    newest = max(os.path.getmtime(os.path.join(SRC, s)) for s in SOURCES)
    jobs = [
        (lib, [cc] + WARN + ["-shared", "-fPIC", "-fvisibility=hidden", "-o", lib + ".tmp",
                             "powercut.c", "pc_common.c", "-ldl"]),
        (tool, [cc] + WARN + ["-o", tool + ".tmp", "pc_tool.c", "pc_common.c"]),
    ]
    for out, cmd in jobs:
        if os.path.exists(out) and os.path.getmtime(out) >= newest:
            continue
        tmp = "%s.%d.tmp" % (out, os.getpid())  # concurrent builds never share a file
        cmd = [tmp if c == out + ".tmp" else c for c in cmd]
        p = subprocess.run(cmd, cwd=SRC, capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            raise RuntimeError("building %s failed:\n%s%s" % (out, p.stdout, p.stderr))
        os.replace(tmp, out)
    return lib, tool


def env_for(lib, data_dir, state_dir, base=None):
    """Environment for a process whose writes under data_dir are modelled."""
    env = dict(base if base is not None else os.environ)
    pre = env.get("LD_PRELOAD")
    env["LD_PRELOAD"] = lib + (" " + pre if pre else "")
    env["POWERCUT_DIR"] = os.path.abspath(data_dir)
    env["POWERCUT_STATE"] = os.path.abspath(state_dir)
    return env


def init(tool, data_dir, state_dir):
    """Take everything now in data_dir as durable (nothing may be running)."""
    p = subprocess.run([tool, "init", data_dir, state_dir], capture_output=True, text=True,
                       timeout=300)
    if p.returncode != 0:
        raise RuntimeError("powercut-tool init failed: %s%s" % (p.stdout, p.stderr))


def restore(tool, data_dir, state_dir):
    """The cut: replace data_dir by its durable image. Returns the tool's summary
    dict (files, bytes, bytes_before, names, names_before, errors)."""
    p = subprocess.run([tool, "restore", data_dir, state_dir], capture_output=True, text=True,
                       timeout=300)
    try:
        summary = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        summary = {"errors": 1}
    summary["exit"] = p.returncode
    if p.stderr:
        summary["stderr"] = p.stderr[-2000:]
    if p.returncode != 0 and "files" not in summary:
        raise RuntimeError("powercut-tool restore failed: %s%s" % (p.stdout, p.stderr))
    return summary


def status(tool, state_dir):
    """(warnings, errors): the lines the layer wrote about what it could not model."""
    p = subprocess.run([tool, "status", state_dir], capture_output=True, text=True, timeout=60)
    warnings, errors = [], []
    for line in p.stdout.splitlines():
        (errors if line.startswith("errors:") else warnings).append(line.split(": ", 1)[-1])
    return warnings, errors


def loaded_in(pid, lib):
    """True when process pid has the layer mapped (it runs under the model)."""
    try:
        with open("/proc/%d/maps" % pid) as f:
            return any(lib in line for line in f)
    except OSError:
        return False
