#!/usr/bin/env python3
"""Checks what `docker build .` would send and put in the image, without a
Docker engine: applies .dockerignore to this checkout the way Docker does
(Go filepath.Match patterns, `**` for any depth, `!` exceptions, the last
matching pattern wins, a match on a parent directory excludes what is in it),
then asserts that no build output, key material, gateway state or capture is
in the context, and that the Dockerfile's runtime stage runs as a non-root
user, never copies key material, and declares EXPOSE and HEALTHCHECK.
Run from the repository root; exits 1 naming each problem."""
import os
import re
import sys

FORBIDDEN = [
    (re.compile(r"(^|/)target(/|$)"), "build output"),
    (re.compile(r"^configs/keys(/|$)"), "the demo's key material"),
    (re.compile(r"^configs/state(/|$)"), "gateway state"),
    (re.compile(r"\.(secret|key|pkey|cred|revocations)$"), "key material"),
    (re.compile(r"\.pcap(ng)?(\.\d+)?$"), "a capture"),
]


def pattern_regex(pat):
    out = ""
    i = 0
    while i < len(pat):
        c = pat[i]
        if pat.startswith("**", i):
            out += ".*"
            i += 2
            if pat.startswith("/", i):
                out += "/?"
                i += 1
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = pat.index("]", i)
            out += pat[i : j + 1].replace("[!", "[^")
            i = j + 1
            continue
        else:
            out += re.escape(c)
        i += 1
    return re.compile("^" + out + "$")


def load_patterns(path):
    pats = []
    if not os.path.exists(path):
        return pats
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            neg = line.startswith("!")
            if neg:
                line = line[1:].strip()
            line = os.path.normpath(line).lstrip("/")
            pats.append((pattern_regex(line), neg))
    return pats


def excluded(rel, pats):
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for rx, neg in pats:
        if any(rx.match(p) for p in prefixes):
            result = not neg
    return result


def context_files(root, pats):
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        # Docker still walks excluded directories for exceptions; with no
        # exception pattern here, pruning is equivalent and fast.
        dirnames[:] = [d for d in dirnames if not excluded(rel_dir + d, pats)]
        for name in filenames:
            rel = rel_dir + name
            if not excluded(rel, pats):
                yield rel


def main():
    problems = []
    pats = load_patterns(".dockerignore")
    if any(neg for _, neg in pats):
        problems.append(".dockerignore: exception patterns (!) are not supported by this check")
    files = list(context_files(".", pats))
    for rel in files:
        for rx, what in FORBIDDEN:
            if rx.search(rel):
                problems.append(f"build context contains {what}: {rel}")
    docker = open("Dockerfile").read()
    runtime = docker.split("AS runtime", 1)[-1]
    users = re.findall(r"^USER\s+(\S+)", runtime, re.M)
    if not users or users[-1] in ("root", "0"):
        problems.append("Dockerfile: the runtime stage does not switch to a non-root USER")
    for line in re.findall(r"^COPY .*$", runtime, re.M):
        args = [a for a in line.split()[1:] if not a.startswith("--")]
        for src in args[:-1]:
            if re.search(r"keys|secret|state|\.key$", src) or src.rstrip("/") == "configs":
                problems.append(f"Dockerfile: runtime COPY may carry key material: {src}")
    for word in ("EXPOSE", "HEALTHCHECK"):
        if not re.search(rf"^{word}\s", runtime, re.M):
            problems.append(f"Dockerfile: the runtime stage has no {word}")
    for p in problems:
        print(f"check-docker-context: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"check-docker-context: ok ({len(files)} files in the build context)")


if __name__ == "__main__":
    main()
