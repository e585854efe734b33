"""A made-up site for the benchmarks: text files that compress as real HTML, CSS and JS do, of
varied sizes, and the order to ask for them in.

    python3 bench/site.py FOLDER --files 1000 --min 2048 --max 20480 [--zipf TABLE] [--paths LIST]

Writes FOLDER/p<i>/<name>.{html,css,js,json,svg}, sizes log-uniform between --min and --max bytes.
The path lists name pages without .html (`/p3/name-7`), the way sites link them.
--zipf writes TABLE: 100,000 request paths, one a line, drawn from the files by a Zipf law
(exponent 1, as web traffic roughly follows) over a shuffled ranking, so the hottest files are of
every size and type. --paths writes LIST: every path once, in a shuffled order (the cold pass).
Everything is seeded: the same arguments give the same bytes.
"""

import argparse
import bisect
import itertools
import math
import os
import random

WORDS_SEED, FILES_SEED, ORDER_SEED = 11, 12, 13


def vocabulary(rng, n=600):
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(2, 10))) for _ in range(n)]


def html(rng, words, size):
    out = ['<!doctype html><html lang="en"><head><meta charset="utf-8"><title>',
           " ".join(rng.choices(words, k=4)), '</title><link rel="stylesheet" href="/app.css">',
           '</head><body><main class="content">']
    n = sum(map(len, out))
    while n < size:
        tag = rng.choice(("p", "li", "h2", "span", "a", "td"))
        cls = rng.choice(words)
        text = " ".join(rng.choices(words, k=rng.randint(4, 30)))
        piece = f'<{tag} class="{cls}">{text}</{tag}>\n'
        out.append(piece)
        n += len(piece)
    return "".join(out)


def css(rng, words, size):
    props = ("color", "margin", "padding", "display", "font-size", "border", "width", "height")
    vals = ("0", "auto", "1rem", "#333", "flex", "none", "100%", "solid 1px #ddd", "block")
    out, n = [], 0
    while n < size:
        rules = "".join(f"  {rng.choice(props)}: {rng.choice(vals)};\n" for _ in range(rng.randint(2, 6)))
        piece = f".{rng.choice(words)} .{rng.choice(words)} {{\n{rules}}}\n"
        out.append(piece)
        n += len(piece)
    return "".join(out)


def js(rng, words, size):
    out, n = ['"use strict";\n'], 14
    while n < size:
        name, arg, other = rng.choice(words), rng.choice(words), rng.choice(words)
        piece = (f"function {name}({arg}) {{\n  const {other} = {arg}.map((x) => x.{rng.choice(words)});\n"
                 f"  if ({other}.length > {rng.randint(0, 99)}) return {rng.choice(words)}({other});\n"
                 f"  return \"{' '.join(rng.choices(words, k=5))}\";\n}}\n")
        out.append(piece)
        n += len(piece)
    return "".join(out)


def json_doc(rng, words, size):
    out, n = ["["], 1
    while n < size:
        piece = '{"id":%d,"name":"%s","tags":["%s"]},' % (
            rng.randint(0, 10**6), rng.choice(words), '","'.join(rng.choices(words, k=3)))
        out.append(piece)
        n += len(piece)
    return "".join(out) + "{}]"


def svg(rng, words, size):
    out = ['<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">']
    n = len(out[0])
    while n < size:
        pts = " ".join(f"{rng.randint(0, 100)},{rng.randint(0, 100)}" for _ in range(6))
        piece = f'<polyline points="{pts}" fill="none" stroke="#{rng.randrange(16**6):06x}"/>\n'
        out.append(piece)
        n += len(piece)
    return "".join(out) + "</svg>"


KINDS = (("html", html, 5), ("js", js, 2), ("css", css, 1), ("json", json_doc, 1), ("svg", svg, 1))


def write_site(folder, files, lo, hi):
    words = vocabulary(random.Random(WORDS_SEED))
    rng = random.Random(FILES_SEED)
    kinds = [k for k in KINDS for _ in range(k[2])]
    paths = []
    for i in range(files):
        ext, make, _ = rng.choice(kinds)
        size = int(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        rel = f"p{i % 40}/{rng.choice(words)}-{i}.{ext}"
        os.makedirs(os.path.join(folder, os.path.dirname(rel)), exist_ok=True)
        with open(os.path.join(folder, rel), "w") as f:
            f.write(make(rng, words, size)[:size])
        # Pages are linked without .html, as the proxy serves them (it redirects the .html form).
        paths.append("/" + (rel[: -len(".html")] if ext == "html" else rel))
    return paths


def zipf_table(paths, n=100_000, exponent=1.0):
    rng = random.Random(ORDER_SEED)
    ranked = paths[:]
    rng.shuffle(ranked)
    cumulative = list(itertools.accumulate(1 / (k ** exponent) for k in range(1, len(ranked) + 1)))
    top = cumulative[-1]
    return [ranked[bisect.bisect(cumulative, rng.random() * top)] for _ in range(n)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("folder")
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--min", type=int, default=2048)
    p.add_argument("--max", type=int, default=20480)
    p.add_argument("--zipf")
    p.add_argument("--paths")
    a = p.parse_args()
    paths = write_site(a.folder, a.files, a.min, a.max)
    if a.zipf:
        with open(a.zipf, "w") as f:
            f.write("".join(path + "\n" for path in zipf_table(paths)))
    if a.paths:
        shuffled = paths[:]
        random.Random(ORDER_SEED + 1).shuffle(shuffled)
        with open(a.paths, "w") as f:
            f.write("".join(path + "\n" for path in shuffled))


if __name__ == "__main__":
    main()
