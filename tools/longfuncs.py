#!/usr/bin/env python3
"""tools/longfuncs.py [--min N] [PATH...] — the C/CUDA functions longer than N lines (default 150),
longest first: "LINES FILE:FIRST-LAST NAME". PATHs are files or folders (default: the product's
folders common storage kernels sched stream models api tools, and tests). A function is a top-level
brace block whose header (the text since the previous top-level ';', '}' or preprocessor line) has
a parameter list and no '=' before it (so initialised tables and structs do not count); its length
runs from the header's first line to the closing brace. Comments, strings and character literals
are skipped when counting braces. Exits 0; it only reads."""
import os
import re
import sys

EXTS = (".c", ".h", ".cu", ".cuh")
DEFAULT = ["common", "storage", "kernels", "sched", "stream", "models", "api", "tools", "tests"]
KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "__attribute__", "__launch_bounds__", "defined"}


def strip(text):
    """text with comments, strings and char literals blanked (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(path):
    text = strip(open(path, encoding="utf-8", errors="replace").read())
    lines = text.split("\n")
    # preprocessor lines end a header (a macro body is not a function)
    text = "\n".join("" if l.lstrip().startswith("#") else l for l in lines)
    depth, head_start, head, line, name = 0, 0, [], 1, None
    for ch in text:
        if depth == 0:
            if ch == "{":
                h = "".join(head)
                name = None
                if "(" in h and "=" not in h.split("(")[0] and not re.match(r"\s*(extern\s+\"C\"|namespace\b)", h):
                    ids = [t for t in re.findall(r"[A-Za-z_]\w*(?=\s*\()", h) if t not in KEYWORDS]
                    named = [t for t in ids if not t.isupper()] or ids
                    name = named[0] if named else None
                depth = 1
            elif ch in ";}":
                head = []
            elif head or not ch.isspace():
                if not head:
                    head_start = line
                head.append(ch)
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                if name:
                    yield name, head_start, line
                head, name = [], None
        if ch == "\n":
            line += 1


def main():
    args = sys.argv[1:]
    least = 150
    if args[:1] == ["--min"]:
        least, args = int(args[1]), args[2:]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = args or [os.path.join(root, d) for d in DEFAULT]
    files = []
    for p in paths:
        if os.path.isdir(p):
            for d, _, fs in os.walk(p):
                files += [os.path.join(d, f) for f in fs if f.endswith(EXTS)]
        elif p.endswith(EXTS):
            files.append(p)
    rows = []
    for f in sorted(files):
        for name, a, b in functions(f):
            if b - a + 1 > least:
                rows.append((b - a + 1, os.path.relpath(f, root), a, b, name))
    for n, f, a, b, name in sorted(rows, key=lambda r: (-r[0], r[1])):
        print(f"{n:5d} {f}:{a}-{b} {name}")


if __name__ == "__main__":
    main()
