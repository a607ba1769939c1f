#!/usr/bin/env python3
"""Builds the benchmark's real-text corpus from English documentation that Debian
ships: the Linux kernel's documentation, Python's, PostgreSQL's manual and the
Debian Administrator's Handbook. Their prose is cut into news-sized documents
(a title, a body of about 3.4 KB, a date, tags, a source), and a query set of
one, two and three words and two-word phrases is drawn from the bodies.

    python3 tools/bench/real/build_corpus.py --out /tmp/real
    # writes /tmp/real/corpus.jsonl, /tmp/real/queries.txt, /tmp/real/SOURCES

Needs only `apt-get download` and `dpkg-deb` (no package is installed) and the
Python standard library. The output is deterministic for given package
versions, which SOURCES records.
"""

import argparse
import gzip
import hashlib
import html.parser
import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGES = [
    "linux-doc-6.1",
    "python3.11-doc",
    "postgresql-doc-15",
    "debian-handbook",
    "debian-reference-en",
    "rust-doc",
    "perl-doc",
    "nodejs-doc",
    "git-doc",
]

# Where each package keeps its prose, how to read it, and whether to look in
# subfolders too.
RUST = "usr/share/doc/rust-doc/html"
SOURCES = [
    ("linux", "usr/share/doc/linux-doc-6.1/html/_sources", ".txt", "rst", True),
    ("python", "usr/share/doc/python3.11/html/_sources", ".txt", "rst", True),
    ("postgresql", "usr/share/doc/postgresql-doc-15/html", ".html", "html", True),
    ("debian", "usr/share/doc/debian-handbook/html/en-US", ".html", "html", False),
    ("debian", "usr/share/debian-reference", ".en.html", "html", False),
    ("rust", f"{RUST}/book", ".html", "html", False),
    ("rust", f"{RUST}/reference", ".html", "html", True),
    ("rust", f"{RUST}/nomicon", ".html", "html", True),
    ("rust", f"{RUST}/rust-by-example", ".html", "html", True),
    ("rust", f"{RUST}/edition-guide", ".html", "html", True),
    ("rust", f"{RUST}/embedded-book", ".html", "html", True),
    ("rust", f"{RUST}/rustc", ".html", "html", True),
    ("rust", f"{RUST}/std", ".html", "html", True),
    ("perl", "usr/share/perl/5.36.0/pod", ".pod", "pod", False),
    ("nodejs", "usr/share/doc/nodejs/api", ".html", "html", False),
    ("git", "usr/share/doc/git-doc", ".html", "html", True),
]

BODY_BYTES = 3400
MIN_PARAGRAPH_WORDS = 8

STOPWORDS = set(
    """a about above after again against all am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers him his how i if in into is
    it its itself just me more most my no nor not now of off on once only or other our
    out over own same she should so some such than that the their them then there these
    they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours also may must use used using one two
    see set get new can't don't it's e.g i.e etc""".split()
)


def run(cmd, cwd):
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def fetch(work: Path, packages) -> dict:
    """Downloads and unpacks `packages` into `work`; their versions."""
    debs = work / "debs"
    root = work / "root"
    debs.mkdir(parents=True, exist_ok=True)
    # Only the packages asked for: a root left from another run may hold more.
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    versions = {}
    for package in packages:
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            run(["apt-get", "download", package], cwd=debs)
            found = sorted(debs.glob(f"{package}_*.deb"))
        deb = found[-1]
        versions[package] = deb.name.split("_")[1]
        run(["dpkg-deb", "-x", str(deb), str(root)], cwd=work)
    return versions


ROLE = re.compile(r":[a-zA-Z:+-]+:`([^`<]*?)(?:\s*<[^>]*>)?`")
LINK = re.compile(r"`([^`<]+?)(?:\s*<[^>]*>)?`_+")
LITERAL = re.compile(r"``([^`]+)``")
EMPHASIS = re.compile(r"\*\*?([^*]+)\*\*?")
UNDERLINE = re.compile(r"^([=\-~^\"'`#*+.:_])\1{2,}\s*$")


def rst_text(text: str):
    """The title and prose paragraphs of a reStructuredText source."""
    title = None
    paragraphs = []
    lines = text.splitlines()
    block = []
    in_literal = False
    literal_indent = 0

    def flush():
        if block:
            paragraphs.append(" ".join(block))
            block.clear()

    for i, raw in enumerate(lines):
        line = raw.rstrip()
        indent = len(line) - len(line.lstrip())
        if in_literal:
            if line and indent <= literal_indent:
                in_literal = False
            else:
                continue
        if not line:
            flush()
            continue
        stripped = line.strip()
        if UNDERLINE.match(stripped):
            # A heading's underline (or overline): the line before is a title.
            if block and len(block) == 1:
                heading = block.pop()
                if title is None:
                    title = heading
            flush()
            continue
        if stripped.startswith(".."):
            flush()
            in_literal = True
            literal_indent = indent
            continue
        if stripped.startswith(("|", "+-", "+=", ">>>", "$ ", "# ")):
            flush()
            continue
        if stripped.endswith("::"):
            stripped = stripped[:-2].rstrip()
            if stripped:
                block.append(stripped + ":")
            flush()
            in_literal = True
            literal_indent = indent
            continue
        block.append(stripped)
    flush()
    cleaned = []
    for p in paragraphs:
        p = ROLE.sub(r"\1", p)
        p = LINK.sub(r"\1", p)
        p = LITERAL.sub(r"\1", p)
        p = EMPHASIS.sub(r"\1", p)
        p = re.sub(r"^[-*•]\s+", "", p)
        cleaned.append(p)
    return title, cleaned


class HtmlProse(html.parser.HTMLParser):
    """The <title> and the text of <p>, <li> and <dd> elements, outside <pre>,
    <code> tables and scripts."""

    PROSE = {"p", "li", "dd"}
    SKIP = {"script", "style", "pre", "table", "nav", "head"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.title = None
        self.in_title = False
        self.skip = 0
        self.depth = 0
        self.current = []
        self.paragraphs = []
        self.opened = []

    def handle_starttag(self, tag, attrs):
        # The handbook's paragraphs are <div class="para">.
        para = tag == "div" and ("class", "para") in attrs
        if tag == "title":
            self.in_title = True
            self.current = []
        elif tag in self.SKIP:
            self.skip += 1
        elif (tag in self.PROSE or para) and not self.skip:
            self.flush()
            self.depth += 1
            self.opened.append(tag)

    def handle_endtag(self, tag):
        if tag == "title":
            self.title = " ".join("".join(self.current).split())
            self.current = []
            self.in_title = False
        elif tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif self.depth and self.opened and tag == self.opened[-1]:
            self.flush()
            self.depth -= 1
            self.opened.pop()

    def handle_data(self, data):
        if self.in_title or (self.depth and not self.skip):
            self.current.append(data)

    def flush(self):
        text = " ".join("".join(self.current).split())
        if text and not self.in_title:
            self.paragraphs.append(text)
        self.current = []


def html_text(text: str):
    parser = HtmlProse()
    parser.feed(text)
    parser.flush()
    return parser.title, parser.paragraphs


POD_CODE = re.compile(r"[A-Z]<<+\s*(.*?)\s*>+>|[A-Z]<([^<>]*)>")


def pod_text(text: str):
    """The title and prose paragraphs of a Perl POD file: `=head1 NAME` gives
    the title; verbatim (indented) paragraphs and commands are left out."""
    title = None
    paragraphs = []
    in_pod = True
    name_next = False
    for block in re.split(r"\n\s*\n", text):
        if not block.strip():
            continue
        first = block.lstrip("\n")
        if first.startswith("="):
            command = first.split(None, 1)
            in_pod = command[0] != "=cut"
            name_next = command[0] == "=head1" and len(command) > 1 and command[1].strip() == "NAME"
            continue
        if not in_pod or first[:1] in (" ", "\t"):
            continue
        line = " ".join(first.split())
        for _ in range(3):
            line = POD_CODE.sub(lambda m: m.group(1) or m.group(2) or "", line)
        if name_next and title is None:
            title = line
            name_next = False
            continue
        paragraphs.append(line)
    return title, paragraphs


def prose(paragraph: str) -> bool:
    """Whether a paragraph reads as English prose rather than code or a table."""
    words = paragraph.split()
    if len(words) < MIN_PARAGRAPH_WORDS:
        return False
    letters = sum(c.isalpha() for c in paragraph)
    return letters >= 0.7 * len(paragraph.replace(" ", ""))


def bodies(paragraphs):
    """Paragraphs joined into bodies of about BODY_BYTES."""
    body = []
    size = 0
    for p in paragraphs:
        while len(p) > BODY_BYTES * 2:
            # A very long paragraph: cut at a sentence end near the size.
            cut = p.rfind(". ", 0, BODY_BYTES)
            cut = cut + 1 if cut > BODY_BYTES // 2 else BODY_BYTES
            head, p = p[:cut].strip(), p[cut:].strip()
            if body:
                yield "\n\n".join(body)
                body, size = [], 0
            yield head
        body.append(p)
        size += len(p) + 2
        if size >= BODY_BYTES:
            yield "\n\n".join(body)
            body, size = [], 0
    if body and size >= BODY_BYTES // 3:
        yield "\n\n".join(body)


def documents(root: Path):
    n = 0
    readers = {"rst": rst_text, "html": html_text, "pod": pod_text}
    for source, rel, suffix, kind, deep in SOURCES:
        base = root / rel
        if not base.is_dir():
            continue
        found = base.rglob(f"*{suffix}") if deep else base.glob(f"*{suffix}")
        files = sorted(p for p in found if "translations" not in p.parts)
        for path in files:
            raw = path.read_bytes()
            if path.name.endswith(".gz"):
                raw = gzip.decompress(raw)
            text = raw.decode("utf-8", errors="replace")
            title, paragraphs = readers[kind](text)
            paragraphs = [p for p in paragraphs if prose(p)]
            section = path.relative_to(base).parts[0].split(".")[0].lower()
            if not title:
                title = path.stem.replace("_", " ").replace("-", " ")
            title = re.sub(r"\s+", " ", title).strip()[:200]
            for part, body in enumerate(bodies(paragraphs)):
                name = str(path.relative_to(base))
                digest = hashlib.sha256(f"{source}/{name}/{part}".encode()).digest()
                day = int.from_bytes(digest[:4], "little") % 3650
                year, doy = 2015 + day // 365, day % 365
                month, mday = 1 + doy // 31 % 12, 1 + doy % 28
                doc = {
                    "id": f"r{n:06d}",
                    "title": title if part == 0 else f"{title} ({part + 1})",
                    "body": body,
                    "date": f"{year:04d}-{month:02d}-{mday:02d}T00:00:00Z",
                    "tags": sorted({source, section}),
                    "source": source,
                }
                n += 1
                yield doc


WORD = re.compile(r"[a-z]{3,}")


def queries(docs, n: int, seed: int):
    """`n` queries in equal shares: one, two and three words among a document's
    most telling ones (frequent in it, rare elsewhere: what a person looking
    for it would type), and two-word phrases that occur in one."""
    words_of = [WORD.findall((d["title"] + " " + d["body"]).lower()) for d in docs]
    df = {}
    for words in words_of:
        for w in set(words):
            df[w] = df.get(w, 0) + 1
    most = max(3, len(docs) // 20)

    def telling(w):
        return w not in STOPWORDS and 3 <= df.get(w, 0) <= most

    rng = random.Random(seed)
    out = []
    kinds = ["one", "two", "three", "phrase"]
    while len(out) < n:
        words = words_of[rng.randrange(len(docs))]
        kind = kinds[len(out) % len(kinds)]
        if kind == "phrase":
            pairs = [(a, b) for a, b in zip(words, words[1:]) if telling(a) and telling(b)]
            if not pairs:
                continue
            a, b = pairs[rng.randrange(len(pairs))]
            out.append(f'"{a} {b}"')
            continue
        counts = {}
        for w in words:
            if telling(w):
                counts[w] = counts.get(w, 0) + 1
        ranked = sorted(counts, key=lambda w: (-counts[w] / df[w] ** 0.5, w))[:8]
        size = {"one": 1, "two": 2, "three": 3}[kind]
        if len(ranked) < size:
            continue
        out.append(" ".join(rng.sample(ranked, size)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--work", type=Path, help="download and unpack here (default OUT/work)")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--packages",
        nargs="+",
        default=PACKAGES,
        choices=PACKAGES,
        help="a subset of the packages (a quick corpus for a smoke run)",
    )
    args = ap.parse_args()
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    # Absolute: the package tools run in other directories.
    work = (args.work or args.out / "work").resolve()
    versions = fetch(work, args.packages)
    docs = list(documents(work / "root"))
    with open(args.out / "corpus.jsonl", "w") as f:
        for doc in docs:
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")
    with open(args.out / "queries.txt", "w") as f:
        for q in queries(docs, args.queries, args.seed):
            f.write(q + "\n")
    with open(args.out / "SOURCES", "w") as f:
        for package, version in sorted(versions.items()):
            f.write(f"{package} {version}\n")
    size = os.path.getsize(args.out / "corpus.jsonl")
    print(
        f"{len(docs)} documents, {size / 1e6:.1f} MB of JSONL, {args.queries} queries in {args.out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
