"""Programs that run into the tracer's limits (3.5 syntax).

  python limits.py spin SECONDS   one call that loops for SECONDS: cut by --timeout
  python limits.py many N         one call that calls a helper N times: cut by --max-examples
"""
import sys
import time


def spin(seconds):
    end = time.time() + seconds
    rounds = 0
    while time.time() < end:
        time.sleep(0.05)
        rounds += 1
    return rounds


def helper(i):
    return i * 2


def many(n):
    total = 0
    for i in range(n):
        total += helper(i)
    return total


if __name__ == "__main__":
    if sys.argv[1] == "spin":
        spin(float(sys.argv[2]))
    else:
        many(int(sys.argv[2]))
