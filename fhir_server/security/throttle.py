"""Attempts at getting a token (the token endpoint, a person's sign-in through the API or the pages), counted over a
sliding window per name (the client id an assertion claims, the account name) and per remote address. Beyond the
configured number the attempt is refused with how long to wait; the counting is PyrateLimiter's in-memory bucket
(a sliding log per key), fed with the server's one clock so that tests move time and nothing reads the wall clock.

Why both keys: a password guesser rotating account names is held by its address, and one guessing a single
account from many addresses by the account name. A client id or an account counts its failed attempts only (a
client fetching tokens often, a person signing in often, is never held back; a guesser is), an address every
attempt; so a storm of wrong passwords against one account locks out no other account, except, for others sharing
the storm's address, by the per-address limit (set higher). Why in process memory: the counts are
per-process, so with ``FHIR_WORKERS`` processes a client may get up to that many times the limit before all of
them refuse; keeping counts in the store would make every refused guess a write to it, which is what the limit
protects the store from. The README says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pyrate_limiter import InMemoryBucket, Rate, RateItem

from fhir_server.clock import Now

MAX_KEYS = 10_000  # names and addresses followed at once: a flood of made-up client ids cannot grow memory beyond


@dataclass(frozen=True)
class Key:
    """What one attempt is counted under: ``kind`` (``client``, ``account``, ``address``) and its value."""

    kind: str
    value: str

    @property
    def text(self) -> str:
        return f"{self.kind}:{self.value}"


class TooManyAttempts(Exception):
    """More attempts under ``key`` than its limit allows in the window; ``retry_after`` whole seconds to wait."""

    def __init__(self, key: Key, retry_after: int) -> None:
        super().__init__(f"too many attempts for this {key.kind}: try again in {retry_after} seconds")
        self.key = key
        self.retry_after = retry_after


class AttemptLimiter:
    """Sliding-window limits per key kind (``limits``: kind -> attempts per ``window_seconds``)."""

    def __init__(self, now: Now, limits: dict[str, int], window_seconds: int) -> None:
        self._now = now
        self._rates = {kind: Rate(limit, window_seconds * 1000) for kind, limit in limits.items()}
        self._buckets: dict[str, InMemoryBucket] = {}

    def attempt(self, *keys: Key | None, count: bool = True) -> None:
        """Refuse with :class:`TooManyAttempts` (the longest wait) when any key (None: unknown for this attempt)
        is at its limit; with ``count``, count this attempt under each key that had room."""
        now_ms = int(self._now().timestamp() * 1000)
        refused: TooManyAttempts | None = None
        for key in keys:
            if key is None or key.kind not in self._rates:
                continue
            bucket = self._bucket(key, now_ms)
            item = RateItem(key.text, now_ms)
            if not count and bucket.count() < self._rates[key.kind].limit:
                continue  # room left, and nothing to count
            if not bucket.put(item):  # full: nothing is counted, and the bucket says how long to wait
                # an attempt stays in the window up to its end inclusive: the wait is past that millisecond
                wait = max(1, math.ceil((bucket.waiting(item) + 1) / 1000))
                if refused is None or wait > refused.retry_after:
                    refused = TooManyAttempts(key, wait)
        if refused is not None:
            raise refused

    def record(self, *keys: Key | None) -> None:
        """Count an attempt that was only checked before (a failed password): refusals come with the next one."""
        try:
            self.attempt(*keys)
        except TooManyAttempts:
            pass

    def _bucket(self, key: Key, now_ms: int) -> InMemoryBucket:
        bucket = self._buckets.get(key.text)
        if bucket is None:
            if len(self._buckets) >= MAX_KEYS:
                self._forget_idle(now_ms)
            bucket = self._buckets[key.text] = InMemoryBucket([self._rates[key.kind]])
        bucket.leak(now_ms)
        return bucket

    def _forget_idle(self, now_ms: int) -> None:
        """Drop the keys with no attempt in the window; if every key is busy, the oldest half (a flood of names)."""
        for text, bucket in list(self._buckets.items()):
            bucket.leak(now_ms)
            if bucket.count() == 0:
                del self._buckets[text]
        if len(self._buckets) >= MAX_KEYS:
            for text in list(self._buckets)[: MAX_KEYS // 2]:
                del self._buckets[text]
