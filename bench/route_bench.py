"""Routing decisions per second: ``tenantry.voice.routing.route`` beside ``phonenumbers.parse`` alone (the anchor:
reading a number is the floor of any routing decision), in the same run.

    .venv/bin/python bench/route_bench.py [--seconds 1.0] [--repeat 3] [--numbers 20000] [--json]

Measured on one core, alternating so that every path sees the same machine:

- ``route cold``: every decision on a number not seen before (the normalisation cache cleared before each pass,
  ``--numbers`` distinct numbers cycled): parse, validate, policy, gateway order;
- ``route warm``: the same numbers again with the bounded cache filled, as a gateway re-dialling its usual numbers;
- ``phonenumbers.parse``: parsing alone, no validation, no policy — the anchor;
- ``parse + is_valid_number``: what a cold decision must at least do.

The best of ``--repeat`` passes counts. Prints decisions/s for each and cold routing as a share of the anchor.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable

import phonenumbers

from tenantry.voice.routing import Outcome, normalise, route
from tenantry.voice.snapshot import GatewayRoute, RoutingSnapshot, SiteRoute, Transport, VoiceUserRoute


def build_snapshot(users: int = 1000) -> RoutingSnapshot:
    gateways = tuple(
        GatewayRoute(f"gw{n}.contoso.com", f"gw{n}.contoso.com", 5068, Transport.TLS, "seattle") for n in (1, 2, 3)
    )
    people = {}
    for n in range(users):
        address = f"user{n}@contoso.com"
        people[address] = VoiceUserRoute(f"u{n}", address, f"tel:+1425555{n:04d}", True, n % 2 == 0, "seattle", "US")
    return RoutingSnapshot("contoso", people, {"seattle": SiteRoute("seattle", gateways, ("ms1.contoso.com",))},
                           "peer.contoso.com", ("contoso.com",))


def rate(fn: Callable[[int], None], count: int, seconds: float, before: Callable[[], None] | None = None) -> float:
    """Calls per second of fn(i) for i cycling over range(count), for at least ``seconds`` of timed work.

    ``before`` runs before every sweep over the numbers, outside the timing (the cold pass clears the cache there,
    so that no sweep sees a number twice)."""
    done = 0
    elapsed = 0.0
    while elapsed < seconds:
        if before is not None:
            before()
        started = time.perf_counter()
        for i in range(count):
            fn(i)
        elapsed += time.perf_counter() - started
        done += count
    return done / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--numbers", type=int, default=20000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    snapshot = build_snapshot()
    numbers = [f"206{2000000 + n * 37:07d}" for n in range(args.numbers)]   # national form, read in "US"
    callers = [f"user{n % 1000}@contoso.com" for n in range(args.numbers)]

    # Check first: every decision is a redirect to the three gateways.
    decision = route(snapshot, callers[0], numbers[0])
    assert decision.outcome is Outcome.REDIRECT and len(decision.contacts) == 3, decision
    assert phonenumbers.is_valid_number(phonenumbers.parse(numbers[0], "US"))

    def routed(i: int) -> None:
        route(snapshot, callers[i], numbers[i])

    def parsed(i: int) -> None:
        phonenumbers.parse(numbers[i], "US")

    def validated(i: int) -> None:
        phonenumbers.is_valid_number(phonenumbers.parse(numbers[i], "US"))

    best: dict[str, float] = {"route cold": 0.0, "route warm": 0.0, "phonenumbers.parse": 0.0,
                              "parse + is_valid_number": 0.0}
    for _ in range(args.repeat):
        best["route cold"] = max(best["route cold"],
                                 rate(routed, args.numbers, args.seconds, before=normalise.cache_clear))
        best["route warm"] = max(best["route warm"], rate(routed, args.numbers, args.seconds))
        best["phonenumbers.parse"] = max(best["phonenumbers.parse"], rate(parsed, args.numbers, args.seconds))
        best["parse + is_valid_number"] = max(best["parse + is_valid_number"],
                                              rate(validated, args.numbers, args.seconds))
    share = best["route cold"] / best["phonenumbers.parse"]
    if args.json:
        print(json.dumps({"decisions_per_second": best, "cold_share_of_parse": share,
                          "python": platform.python_version(), "phonenumbers": phonenumbers.__version__}))
    else:
        for name, value in best.items():
            print(f"{name:26s} {value:12,.0f} /s")
        print(f"route cold / phonenumbers.parse: {share:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
