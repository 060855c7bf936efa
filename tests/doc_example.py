#!/usr/bin/env python3
"""Extract a documented program so the build compiles exactly what users read.

  doc_example.py readme README.md OUT.c   the first ```c block of the README
  doc_example.py header nabla.h OUT.c     the program after "A complete program:"
                                           in the umbrella header's comment
"""
import sys


def readme(text):
    lines = text.splitlines()
    start = lines.index("```c") + 1
    end = lines.index("```", start)
    return "\n".join(lines[start:end]) + "\n"


def header(text):
    body = text.split("A complete program:", 1)[1].split(" * Modules", 1)[0]
    out = []
    for line in body.splitlines()[1:]:
        line = line[3:] if line.startswith(" * ") else line.lstrip(" *")
        out.append(line[4:] if line.startswith("    ") else line)
    return "\n".join(out).strip() + "\n"


def main():
    kind, src, dst = sys.argv[1:4]
    with open(src, encoding="utf-8") as f:
        text = f.read()
    code = readme(text) if kind == "readme" else header(text)
    with open(dst, "w", encoding="utf-8") as f:
        f.write(code)


if __name__ == "__main__":
    main()
