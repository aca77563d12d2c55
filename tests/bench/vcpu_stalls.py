#!/usr/bin/env python3
"""Stalls of the machine itself, as a real-time sleeper sees them.

Sleeps 1 ms in a loop for SECONDS and prints every wake-up more than 5 ms after the previous one.
Run it pinned and at real-time priority, one per CPU, beside a test bed run:
    chrt -f 10 taskset -c 0 tests/bench/vcpu_stalls.py 0 240
A SCHED_FIFO thread that sleeps 1 ms can only wake that late when its CPU is not running at all
(the virtual CPU descheduled by the host), which no priority inside the VM prevents.
"""
import sys
import time


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: vcpu_stalls.py CPU_LABEL SECONDS")
    label, seconds = sys.argv[1], float(sys.argv[2])
    end = time.monotonic() + seconds
    last = time.monotonic()
    wakeups = 0
    gaps = []
    while last < end:
        time.sleep(0.001)
        now = time.monotonic()
        wakeups += 1
        if now - last > 0.005:
            gaps.append((now, (now - last) * 1000))
        last = now
    print(f"cpu {label} wakeups {wakeups} gaps_over_5ms {len(gaps)} "
          f"max_ms {max((g for _, g in gaps), default=0):.1f} "
          f"stalled_s {sum(g for _, g in gaps) / 1000:.2f} of {seconds:.0f}")
    for at, gap in gaps:
        # The end time modulo 100 ms: stalls that end on one phase of a 100 ms clock are a
        # CPU quota's refill, not random preemption.
        print(f"cpu {label} end {at:.3f} end_mod_100ms {at % 0.1 * 1000:.0f} gap_ms {gap:.1f}")


if __name__ == "__main__":
    main()
