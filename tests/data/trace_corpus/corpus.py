"""Programs for the tracer's tests on every Python version (3.5 syntax: no f-strings).

Each function exercises something the trace format must record: loops, exceptions caught
and escaping, methods, closures (cell and free variables), recursion, *args and **kwargs,
a local deleted and bound again, a list that outgrows the repr limit, generators consumed
by a traced function, a broken __repr__, long reprs and text beyond ASCII.
"""


def loop_sum(n):
    total = 0
    for i in range(n):
        if i % 2:
            total += i
    return total


def count_down(n):
    steps = []
    while n > 0:
        steps.append(n)
        n -= 1
    return steps


def divide(a, b):
    try:
        result = a / b
    except ZeroDivisionError:
        result = None
    finally:
        checked = True
    return result, checked


def fails(x):
    y = x * 2
    raise ValueError("bad value %d" % y)


def catches():
    try:
        fails(3)
    except ValueError as err:
        message = str(err)
    return message


class Account(object):
    def __init__(self, owner, balance=0):
        self.owner = owner
        self.balance = balance

    def deposit(self, amount):
        if amount <= 0:
            raise ValueError("amount must be positive")
        self.balance += amount
        return self.balance

    def __repr__(self):
        return "Account(%r, %r)" % (self.owner, self.balance)


def use_account():
    acct = Account("zoë")
    acct.deposit(5)
    try:
        acct.deposit(-1)
    except ValueError:
        pass
    return acct


def make_counter(start):
    count = start

    def step(by=1):
        nonlocal count
        count += by
        return count

    return step


def scaler(factor):
    def scale(x):
        return x * factor

    doubled = scale(2)
    return doubled


def closures():
    step = make_counter(10)
    first = step()
    second = step(5)
    return first, second


def factorial(n):
    if n <= 1:
        return 1
    return n * factorial(n - 1)


def variadic(first, *rest, **options):
    joined = [first] + list(rest)
    flag = options.get("flag", False)
    return joined, flag


def rebind(items):
    tmp = len(items)
    del tmp
    later = sorted(items)
    tmp = later[0]
    return tmp, later


def grow(n):
    items = []
    for i in range(n):
        items.append(i * 1000)
    return len(items)


def squares(n):
    for i in range(n):
        yield i * i


def consume():
    values = list(squares(4))
    evens = [v for v in values if v % 2 == 0]
    pick = max(values, key=lambda v: -v)
    return values, evens, pick


class Broken(object):
    def __repr__(self):
        raise RuntimeError("no repr")


def odd_values():
    broken = Broken()
    long_text = "x" * 1000
    text = "naïve café 変数 😀"
    return len(long_text), text, broken


def run():
    results = [loop_sum(7), count_down(3), divide(1, 0), divide(6, 3), catches(),
               use_account(), closures(), scaler(3), factorial(5), variadic(1, 2, 3, flag=True),
               rebind([3, 1, 2]), grow(60), consume(), odd_values()]
    return results


if __name__ == "__main__":
    run()
