#!/usr/bin/env python3
"""Run one golden file through `firegridctl decode` and compare the events.

A golden file is a small line-based script (the format is documented in
docs/plugins.md, "Golden tests"):

    # comment                       blank lines and comments are ignored
    plugin zigbee2mqtt              the plugin (exactly once)
    option stale_after=10m          plugin option, any number
    source z2m                      source name the plugin sees (optional)
    now 2025-03-14T09:00:00Z        pin the clock (optional)
    topic zigbee2mqtt/b3/smoke      topic for the files after it
    header Content-Type: text/xml   header for the files after it
    hex frame_hex                   the files after it are hex text: "-" the whole
                                    file, KEY a JSON member (binary samples);
                                    "hex" alone: raw files again
    at 2025-03-14T09:05:00Z         let time pass: wake-ups due by then run
                                    (fg_host.wake_at), later files run then
    file ../shared/corpus/...       a message, path relative to the repo root
    expect {"kind":"smoke"}         the next event (subset match, see below)
    expect nothing                  the whole stream yields no event
    expect error TEXT               the next file the plugin rejects says TEXT

Files run in order as one stream through one plugin instance, so state
carries from file to file.  Events must come out in the order of the expect
lines and there must be no others.  Each expected object's keys must equal
the actual event's (nested objects such as attrs compare the same way, so
they may be given partially); the actual event may carry more keys.  A key
given as null must be absent from the actual event.

Uses the built firegridctl and the built plugin modules (--plugin-dir), so
the shared modules are what is tested.  Standard library only.
"""
import argparse
import json
import os
import subprocess
import sys


class GoldenError(Exception):
    pass


def parse_golden(path):
    spec = {"plugin": None, "source": None, "now": None, "options": [],
            "stream": [], "files": [], "events": [], "errors": [],
            "nothing": False}
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            word, _, rest = line.partition(" ")
            rest = rest.strip()
            where = "%s:%d" % (path, lineno)
            if word in ("plugin", "source", "now"):
                if not rest or spec[word] is not None:
                    raise GoldenError("%s: '%s' needs one value, given once" % (where, word))
                spec[word] = rest
            elif word == "option":
                if "=" not in rest:
                    raise GoldenError("%s: option wants KEY=VALUE" % where)
                spec["options"].append(rest)
            elif word in ("topic", "header", "at"):
                spec["stream"].append(("--" + word, rest))
            elif word == "hex":
                spec["stream"].append(("--hex=" + rest, None))
            elif word == "file":
                if not rest:
                    raise GoldenError("%s: file needs a path" % where)
                spec["stream"].append(("file", rest))
                spec["files"].append(rest)
            elif word == "expect":
                if rest == "nothing":
                    spec["nothing"] = True
                elif rest.startswith("error "):
                    spec["errors"].append(rest[len("error "):].strip())
                else:
                    try:
                        ev = json.loads(rest)
                    except ValueError as e:
                        raise GoldenError("%s: expect wants a JSON object: %s" % (where, e))
                    if not isinstance(ev, dict):
                        raise GoldenError("%s: expect wants a JSON object" % where)
                    spec["events"].append(ev)
            else:
                raise GoldenError("%s: unknown directive '%s'" % (where, word))
    if not spec["plugin"]:
        raise GoldenError("%s: no 'plugin' line" % path)
    if not spec["files"]:
        raise GoldenError("%s: no 'file' line" % path)
    if spec["nothing"] and spec["events"]:
        raise GoldenError("%s: 'expect nothing' next to expected events" % path)
    if not spec["nothing"] and not spec["events"] and not spec["errors"]:
        raise GoldenError("%s: expects nothing at all; say 'expect nothing'" % path)
    return spec


def build_command(spec, ctl, plugin_dir, root):
    cmd = [ctl, "decode", "--plugin", spec["plugin"], "--plugin-dir", plugin_dir]
    if spec["source"]:
        cmd += ["--source", spec["source"]]
    if spec["now"]:
        cmd += ["--now", spec["now"]]
    for opt in spec["options"]:
        cmd += ["--option", opt]
    for kind, value in spec["stream"]:
        if kind == "file":
            path = os.path.normpath(os.path.join(root, value))
            if not os.path.isfile(path):
                raise GoldenError("missing input file %s (%s)" % (value, path))
            cmd.append(path)
        elif value is None:
            cmd.append(kind)
        else:
            cmd += [kind, value]
    return cmd


def matches(expected, actual):
    if isinstance(expected, dict):
        # null says "this key must be absent": events never carry nulls.
        return isinstance(actual, dict) and all(
            (k not in actual) if v is None else (k in actual and matches(v, actual[k]))
            for k, v in expected.items())
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return expected == actual


def run(spec, cmd, root):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)
    problems = []
    events = []
    for line in proc.stdout.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            problems.append("stdout line is not JSON: %r" % line)

    # "FILE: reason" lines name a file of the stream; other stderr lines are logs.
    paths = {os.path.normpath(os.path.join(root, f)) for f in spec["files"]}
    errors = [l for l in proc.stderr.splitlines()
              if any(l.startswith(p + ": ") for p in paths)]

    want = spec["events"]
    for i in range(max(len(want), len(events))):
        exp = want[i] if i < len(want) else None
        act = events[i] if i < len(events) else None
        if exp is None:
            problems.append("unexpected event #%d: %s" % (i + 1, json.dumps(act)))
        elif act is None:
            problems.append("missing event #%d: %s" % (i + 1, json.dumps(exp)))
        elif not matches(exp, act):
            problems.append("event #%d differs:\n    expected %s\n    actual   %s"
                            % (i + 1, json.dumps(exp), json.dumps(act)))
    for i in range(max(len(spec["errors"]), len(errors))):
        exp = spec["errors"][i] if i < len(spec["errors"]) else None
        act = errors[i] if i < len(errors) else None
        if exp is None:
            problems.append("unexpected failure: %s" % act)
        elif act is None:
            problems.append("missing failure #%d containing %r" % (i + 1, exp))
        elif exp not in act:
            problems.append("failure #%d differs:\n    expected ...%s...\n    actual   %s"
                            % (i + 1, exp, act))
    want_rc = 1 if spec["errors"] else 0
    if proc.returncode != want_rc:
        problems.append("exit status %d, expected %d" % (proc.returncode, want_rc))
    return proc, events, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--firegridctl", required=True, help="the built firegridctl")
    ap.add_argument("--plugin-dir", required=True, help="where the built plugin modules are")
    ap.add_argument("--root", required=True, help="repository root (file paths are relative to it)")
    ap.add_argument("golden", help="the .golden file")
    args = ap.parse_args()
    try:
        spec = parse_golden(args.golden)
        cmd = build_command(spec, args.firegridctl, args.plugin_dir, args.root)
    except (GoldenError, OSError) as e:
        print("golden: %s" % e, file=sys.stderr)
        return 2
    proc, events, problems = run(spec, cmd, args.root)
    if problems:
        print("FAIL %s" % args.golden)
        print("command: %s" % " ".join(cmd))
        for p in problems:
            print("  " + p)
        if proc.stderr:
            print("stderr:\n" + proc.stderr.rstrip())
        return 1
    print("ok %s: %d event(s), %d expected failure(s)"
          % (args.golden, len(events), len(spec["errors"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
