"""A workload over pure-Python modules of the standard library, traced with ROOT set to the
interpreter's own library directory by order_check.py (3.5 syntax)."""
import argparse
import configparser
import csv
import difflib
import fractions
import io
import json
import statistics
import textwrap

a = [str(i) for i in range(30)]
list(difflib.unified_diff(a, a[::2] + ["x"]))
difflib.SequenceMatcher(None, "abcdefgh" * 2, "abxdefgyh" * 2).ratio()
textwrap.fill("hello world " * 10, 30)
textwrap.dedent("  a\n  b\n")
json.loads(json.dumps({"a": [1, 2, {"b": None}]}))
statistics.median([3, 1, 2, 5])
statistics.stdev([1.0, 2.0, 4.0])
fractions.Fraction(3, 4) + fractions.Fraction("1/3")
parser = argparse.ArgumentParser()
parser.add_argument("--x", type=int)
parser.parse_args(["--x", "3"])
config = configparser.ConfigParser()
config.read_string("[s]\na=1\nb=%(a)s2\n")
config.get("s", "b")
list(csv.reader(io.StringIO('a,b\n1,"2,3"\n')))
