"""Drives gamification-engine's `POST /increase_value/{variable}/{subject}` with a fixed
number of concurrent clients for a fixed time and prints increases/s and latency
percentiles. Standard library only; loopback only. Used by gamification-engine.sh."""

import argparse
import http.client
import json
import threading
import time
import urllib.parse


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:6543")
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--variable", default="participate")
    parser.add_argument("--subjects", default="1,2,3", help="subject ids of its demo data")
    args = parser.parse_args()
    url = urllib.parse.urlparse(args.url)
    subjects = args.subjects.split(",")
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + args.duration

    def client(n: int) -> None:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        i = n
        mine: list[float] = []
        failed = 0
        while time.monotonic() < stop_at:
            subject = subjects[i % len(subjects)]
            i += 1
            body = urllib.parse.urlencode({"value": 1})
            started = time.perf_counter()
            try:
                conn.request("POST", f"/increase_value/{args.variable}/{subject}", body,
                             {"Content-Type": "application/x-www-form-urlencoded"})
                reply = conn.getresponse()
                reply.read()
                if reply.status == 200:
                    mine.append(time.perf_counter() - started)
                else:
                    failed += 1
            except (OSError, http.client.HTTPException):
                failed += 1
                conn.close()
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=client, args=(n,)) for n in range(args.concurrency)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    result = {
        "peer": "gamification-engine 0.4.0",
        "endpoint": "POST /increase_value/{variable}/{subject}",
        "concurrency": args.concurrency,
        "seconds": round(elapsed, 1),
        "increases": len(latencies),
        "errors": errors[0],
        "increases_per_sec": round(len(latencies) / elapsed, 1),
        "p50_ms": round(pct(0.50), 1),
        "p99_ms": round(pct(0.99), 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
