"""Runs cwm_tracer.py with checks against CPython itself: on every recorded event, the order
the tracer gives the locals must be `frame.f_locals`'s own (3.6 and later, whose dicts keep
order); on 3.11 and later, for every traced function, the qualified name the tracer derives
from the source file (what it uses before 3.11) must be `co_qualname`.

Usage: python order_check.py TRACER ROOT OUT SCRIPT
Prints "checked N events, M mismatches" and "checked N qualnames, M mismatches" on stderr,
and the first mismatches.
"""
import atexit
import os
import sys

tracer_path, root, out, script = sys.argv[1:5]
sys.path.insert(0, os.path.dirname(os.path.abspath(tracer_path)))
tracer = __import__(os.path.splitext(os.path.basename(tracer_path))[0])
counts = [0, 0]
ordered = tracer.Example.ordered_locals


def checked(self, bound):
    pairs = ordered(self, bound)
    counts[0] += 1
    ours, theirs = [name for name, _ in pairs], list(bound)
    if sys.version_info < (3, 11):
        # Before 3.11 an argument that a nested function captures lives in a cell, and each
        # f_locals update deletes and re-adds it, moving it to the end; the tracer keeps it
        # where 3.11 has it (with the arguments). Compare the rest.
        cells = set(self.names_in_cells)
        ours = [n for n in ours if n not in cells]
        theirs = [n for n in theirs if n not in cells]
    if ours != theirs:
        counts[1] += 1
        if counts[1] <= 5:
            sys.__stderr__.write("mismatch in %s: %r != %r\n" % (
                self.qualname, ours, theirs))
    return pairs


names = [0, 0]
qualname = tracer.Tracer.qualname
parsed = {}


def checked_qualname(self, code):
    name = qualname(self, code)
    if hasattr(code, "co_qualname"):
        if code.co_filename not in parsed:
            parsed[code.co_filename] = tracer.qualnames_in(code.co_filename)
        derived = parsed[code.co_filename].get((code.co_firstlineno, code.co_name))
        names[0] += 1
        if derived != name:
            names[1] += 1
            if names[1] <= 5:
                sys.__stderr__.write("qualname mismatch: %r != %r\n" % (derived, name))
    return name


def report():
    sys.__stderr__.write("checked %d events, %d mismatches\n" % (counts[0], counts[1]))
    sys.__stderr__.write("checked %d qualnames, %d mismatches\n" % (names[0], names[1]))


init = tracer.Example.__init__


def init_with_cells(self, tracer_, frame):
    code = frame.f_code
    self.names_in_cells = [n for n in code.co_cellvars if n in code.co_varnames]
    init(self, tracer_, frame)


tracer.Example.__init__ = init_with_cells
tracer.Example.ordered_locals = checked
tracer.Tracer.qualname = checked_qualname
atexit.register(report)
sys.argv = [tracer_path, "--out", out, "--root", root, "--max-examples", "4000", "--",
            script]
tracer.main()
