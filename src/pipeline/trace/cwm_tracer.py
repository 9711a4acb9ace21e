"""cwm-bench's execution tracer: runs a test command in-process under sys.settrace and
writes one JSON line per call of a function defined in the repository (not the standard
library, not site-packages): the function's source and, event by event, what ran in that
function's own scope (call, line, return, exception) with its local variables as reprs.

Standard library only, and Python 3.5 syntax (no f-strings, no variable annotations), so it
runs on every Python that SWE-bench images use.

Usage:
  python cwm_tracer.py --out FILE --root DIR [--max-events N] [--max-repr N]
      [--max-depth N] [--max-examples N] [--timeout S] -- (-m MODULE | SCRIPT) ARGS...
  ... -- --call FILE::FUNCTION   (loads FILE as a module and calls FUNCTION(): for test
                                  runners that cannot select one test)
"""

import collections
import json
import os
import runpy
import sys
import threading
import time

MARKER = "  # << START_OF_TRACE"
PYTHON = "%d.%d.%d" % sys.version_info[:3]
# Dicts keep insertion order from 3.6 on (json.dumps writes that order); 3.5 needs OrderedDict.
Ordered = collections.OrderedDict if sys.version_info < (3, 6) else dict
# Plain functions only: CO_OPTIMIZED | CO_NEWLOCALS set (not module or class bodies), and
# neither generators nor coroutines (whose scope is entered and left once per resume).
FUNCTION = 0x1 | 0x2
SUSPENDABLE = 0x20 | 0x80 | 0x100 | 0x200


def parse_args(argv):
    opts = {"max_events": 2000, "max_repr": 200, "max_depth": 20, "max_examples": 500,
            "timeout": 120.0, "out": None, "root": None}
    i = 0
    while i < len(argv) and argv[i] != "--":
        key = argv[i].lstrip("-").replace("-", "_")
        value = argv[i + 1]
        opts[key] = value if key in ("out", "root") else float(value) if key == "timeout" else int(value)
        i += 2
    return opts, argv[i + 1:]


class Tracer(object):
    def __init__(self, opts):
        self.root = os.path.realpath(opts["root"]) + os.sep
        self.me = os.path.realpath(__file__)
        self.max_events = opts["max_events"]
        self.max_repr = opts["max_repr"]
        self.max_depth = opts["max_depth"]
        self.max_examples = opts["max_examples"]
        self.deadline = time.time() + opts["timeout"]
        self.out = open(opts["out"], "w")
        self.examples = 0
        self.depth = 0
        self.stopped = None
        self.repo_files = {}
        self.qualnames = {}
        self.cwd = os.getcwd()
        self.open = []  # examples whose scope has not exited yet

    def in_repo(self, filename):
        known = self.repo_files.get(filename)
        if known is None:
            # "<frozen ...>", "<string>": code without a file of the repository. A relative
            # name is relative to where the program started (it may chdir later).
            path = "" if filename.startswith("<") else os.path.realpath(
                os.path.join(self.cwd, filename))
            known = (path.startswith(self.root) and path != self.me and os.path.isfile(path)
                     and "site-packages" not in path and "dist-packages" not in path)
            self.repo_files[filename] = known
        return known

    def qualname(self, code):
        """co_qualname (3.11+); before that, the name the function's definition has in its
        file's syntax tree (classes and enclosing functions with their "<locals>")."""
        name = getattr(code, "co_qualname", None)
        if name is None:
            names = self.qualnames.get(code.co_filename)
            if names is None:
                names = self.qualnames[code.co_filename] = qualnames_in(
                    os.path.join(self.cwd, code.co_filename))
            name = names.get((code.co_firstlineno, code.co_name), code.co_name)
        return name

    def stop(self, why):
        """Stops tracing; the examples still open are written now, cut by `why`, so they
        survive even if the test then runs on untraced until it is killed."""
        if self.stopped is None:
            self.stopped = why
        sys.settrace(None)
        threading.settrace(None)
        for example in list(reversed(self.open)):
            example.finish()
        self.out.flush()

    def global_trace(self, frame, event, arg):
        if event != "call" or self.stopped is not None:
            return None
        if time.time() > self.deadline:
            self.stop("wall time")
            return None
        code = frame.f_code
        if (code.co_flags & FUNCTION) != FUNCTION or code.co_flags & SUSPENDABLE:
            return None
        if code.co_name.startswith("<") or not self.in_repo(code.co_filename):
            return None
        if self.examples >= self.max_examples:
            self.stop("examples")
            return None
        if self.depth >= self.max_depth:
            return None
        self.examples += 1
        return Example(self, frame).trace

    def full_repr(self, value):
        try:
            return repr(value)
        except Exception as err:  # a broken __repr__ is the program's, not ours
            return "<repr failed: %s>" % type(err).__name__

    def cut(self, text):
        if len(text) > self.max_repr:
            return text[:self.max_repr] + "..."
        return text

    def safe_repr(self, value):
        return self.cut(self.full_repr(value))


class Example(object):
    """One call of a repository function: its frames, written when its scope exits."""

    def __init__(self, tracer, frame):
        self.tracer = tracer
        code = frame.f_code
        self.file = code.co_filename
        self.first_line = code.co_firstlineno
        self.qualname = tracer.qualname(code)
        self.source_lines, self.start = source_of(frame)
        self.frames = []
        self.truncated = None
        self.order = []  # names in the order f_locals has them (see ordered_locals)
        self.known = set()  # the same names, to see at once that none came or went
        self.names = code_names(code)
        self.previous = {}  # name: (written repr, hash of the whole repr) of the last frame
        tracer.depth += 1
        tracer.open.append(self)
        self.add("call", frame, None)

    def line_text(self, lineno):
        index = lineno - self.start
        if 0 <= index < len(self.source_lines):
            return self.source_lines[index].rstrip("\n")
        return ""

    def add(self, event, frame, value):
        if len(self.frames) >= self.tracer.max_events:
            self.truncated = "events"
            return
        locals_ = Ordered()
        changed = []
        if event in ("call", "line"):
            seen = {}
            for name, v in self.ordered_locals(frame.f_locals):
                whole = self.tracer.full_repr(v)
                text = self.tracer.cut(whole)
                seen[name] = (text, hash(whole))
                before = self.previous.get(name)
                if before is not None and before[0] == text and before[1] != seen[name][1]:
                    changed.append(name)  # the cut text hides a change
                locals_[name] = text
            self.previous = seen
        record = Ordered([
            ("event", event),
            ("line", frame.f_lineno),
            ("source", self.line_text(frame.f_lineno)),
            ("locals", locals_),
            ("value", value),
        ])
        if changed:
            record["cut_changed"] = changed
        self.frames.append(record)

    def ordered_locals(self, bound):
        """The bound locals in CPython 3.6+'s f_locals order on every version (3.5's dict has
        none): names keep their place while bound, and newly bound ones follow in the code
        object's order (co_varnames, co_cellvars, co_freevars)."""
        if bound.keys() != self.known:
            self.order = [n for n in self.order if n in bound]
            seen = set(self.order)
            self.order += [n for n in self.names if n in bound and n not in seen]
            seen.update(self.order)
            self.order += sorted(n for n in bound if n not in seen)  # not in the code object
            self.known = set(self.order)
        return [(n, bound[n]) for n in self.order]

    def trace(self, frame, event, arg):
        if self.tracer.stopped is not None:
            return None
        if time.time() > self.tracer.deadline:
            self.tracer.stop("wall time")
            return None
        if event == "line":
            self.add("line", frame, None)
        elif event == "exception":
            self.add("exception", frame, self.tracer.safe_repr(arg[1]))
        elif event == "return":
            self.add("return", frame, self.tracer.safe_repr(arg))
            self.finish()
            return None
        return self.trace

    def finish(self):
        self.tracer.depth -= 1
        self.tracer.open.remove(self)
        context = list(self.source_lines)
        index = self.first_line - self.start
        if 0 <= index < len(context):
            context[index] = context[index].rstrip("\n") + MARKER + "\n"
        record = Ordered([
            ("qualname", self.qualname),
            ("file", os.path.relpath(os.path.realpath(self.file), self.tracer.root)),
            ("line", self.first_line),
            ("context", "".join(context)),
            ("frames", self.frames),
            ("truncated", self.truncated or self.tracer.stopped),
            ("python", PYTHON),
        ])
        self.tracer.out.write(json.dumps(record) + "\n")


def qualnames_in(path):
    """{(first line, name): qualified name} of every function defined in the file at
    `path`; the first line is that of the def and, when decorated, of its first decorator
    (co_firstlineno has been either, depending on the version)."""
    import ast
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read())
    except (OSError, IOError, SyntaxError, ValueError):
        return {}
    found = {}

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, getattr(ast, "AsyncFunctionDef", ()))):
                qualname = prefix + child.name
                for line in [child.lineno] + [d.lineno for d in child.decorator_list]:
                    found[(line, child.name)] = qualname
                walk(child, qualname + ".<locals>.")
            elif isinstance(child, ast.ClassDef):
                walk(child, prefix + child.name + ".")
            else:
                walk(child, prefix)
    walk(tree, "")
    return found


def code_names(code):
    names = []
    for name in code.co_varnames + code.co_cellvars + code.co_freevars:
        if name not in names:
            names.append(name)
    return names


def source_of(frame):
    """The lines of the function (decorators included) and the number of the first."""
    import inspect
    try:
        lines, start = inspect.getsourcelines(frame.f_code)
        return lines, max(start, 1)
    except (OSError, IOError, TypeError):
        return [], frame.f_code.co_firstlineno


def main():
    opts, command = parse_args(sys.argv[1:])
    tracer = Tracer(opts)
    sys.path.insert(0, os.getcwd())
    if command[:1] == ["--call"]:
        path, name = command[1].rsplit("::", 1)
        sys.argv = [path]
        path = os.path.abspath(path)
        sys.path.insert(0, os.path.dirname(path))

        def run():
            namespace = runpy.run_path(path, run_name="cwm_traced_tests")
            namespace[name]()
    elif command[:1] == ["-m"]:
        module, rest = command[1], command[2:]
        sys.argv = [module] + rest
        run = lambda: runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        script, rest = command[0], command[1:]
        sys.argv = [script] + rest
        script = os.path.abspath(script)
        sys.path[0] = os.path.dirname(script)
        run = lambda: runpy.run_path(script, run_name="__main__")
    threading.settrace(tracer.global_trace)
    sys.settrace(tracer.global_trace)
    code = 0
    try:
        run()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 0
    finally:
        sys.settrace(None)
        threading.settrace(None)
        tracer.out.close()
    sys.stderr.write("cwm-tracer: %d examples%s\n" % (
        tracer.examples, "; stopped by the %s limit" % tracer.stopped if tracer.stopped else ""))
    sys.exit(code)


if __name__ == "__main__":
    main()
