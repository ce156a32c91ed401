#!/usr/bin/env python3
"""Writes a deterministic repository for scripts/bench.sh as a `git fast-import` stream.

    bench-repo.py [--seed N] [--commits N] [--branch NAME] | git -C BARE fast-import --quiet

The same seed and commit count always give the same commits (same ids): fixed author, fixed
timestamps, content from a seeded generator. What it holds, so that a clone costs about what a
real project's does:
  - 600 text files (src/mNN/fileNN.txt, a few KiB of words each); every commit rewrites or
    appends a few lines in 1 to 4 of them;
  - every 50th commit replaces one of 40 incompressible binary files (assets/blobNN.bin,
    64 to 448 KiB), so the history holds tens of MiB that a depth-1 clone does not fetch, and the
    tip tree about 10 MiB that it does.
With the default 3000 commits: about 37 MiB of objects, a tip tree of about 11 MiB.
"""
import argparse
import random
import sys

WORDS = ("slipway worker build image layer registry commit branch clone mirror cache token "
         "digest manifest stage pipeline buildkit docker push pull fetch pack object tree blob "
         "tag ref remote origin depth shallow context file line change test bench figure round "
         "median ratio cold repeat heavy small serve health ping job queue caller scope").split()
TEXT_DIRS, FILES_PER_DIR, BINARIES = 40, 15, 40


def text_file(rng, lines):
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))) for _ in range(lines)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--commits", type=int, default=3000)
    parser.add_argument("--branch", default="main")
    args = parser.parse_args()
    if args.commits < 1:
        sys.exit("bench-repo.py: --commits must be at least 1")
    rng = random.Random(args.seed)
    out = sys.stdout.buffer

    def data(payload):
        out.write(b"data %d\n" % len(payload))
        out.write(payload)
        out.write(b"\n")

    files = {}
    for d in range(TEXT_DIRS):
        for f in range(FILES_PER_DIR):
            files[f"src/m{d:02d}/file{f:02d}.txt"] = text_file(rng, rng.randint(40, 90))
    paths = sorted(files)
    when = 1_700_000_000
    for n in range(1, args.commits + 1):
        changed = {}
        if n == 1:
            changed = {p: files[p] for p in paths}
            for b in range(BINARIES):
                changed[f"assets/blob{b:02d}.bin"] = rng.randbytes(rng.randint(64, 448) * 1024)
        else:
            for p in rng.sample(paths, rng.randint(1, 4)):
                lines = files[p]
                for _ in range(rng.randint(1, 6)):
                    i = rng.randrange(len(lines))
                    lines[i] = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14)))
                if rng.random() < 0.3:
                    lines.extend(text_file(rng, rng.randint(1, 5)))
                changed[p] = lines
            if n % 50 == 0:
                b = rng.randrange(BINARIES)
                changed[f"assets/blob{b:02d}.bin"] = rng.randbytes(rng.randint(64, 448) * 1024)
        when += 600
        out.write(f"commit refs/heads/{args.branch}\nmark :{n}\n".encode())
        out.write(f"author Bench <bench@example.test> {when} +0000\n".encode())
        out.write(f"committer Bench <bench@example.test> {when} +0000\n".encode())
        data(f"change {n}: {len(changed)} files\n".encode())
        if n > 1:
            out.write(f"from :{n - 1}\n".encode())
        for p in sorted(changed):
            value = changed[p]
            payload = value if isinstance(value, bytes) else ("\n".join(value) + "\n").encode()
            out.write(f"M 100644 inline {p}\n".encode())
            data(payload)
        out.write(b"\n")
    out.write(b"done\n")


if __name__ == "__main__":
    main()
