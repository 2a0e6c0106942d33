"""The verdicts the Kubernetes checks print: a line a check, then the closing count."""

import time


class Report:
    def __init__(self):
        self.results = []
        self.start = time.monotonic()

    def __call__(self, name, failures, shown=20):
        """One check: `ok` or `FAIL` with its first SHOWN failures. True when it passed."""
        self.results.append(not failures)
        print(f"{'ok  ' if not failures else 'FAIL'} {name}", flush=True)
        for f in failures[:shown]:
            print(f"       {f}")
        return not failures

    def close(self, what):
        """Prints the time and 'N passed, N failed'; the exit code."""
        passed, failed = self.results.count(True), self.results.count(False)
        print(f"{what}: {time.monotonic() - self.start:.1f} s")
        print(f"{passed} passed, {failed} failed")
        return 1 if failed else 0
