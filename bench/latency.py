"""Valid requests' latency for bench/auth_flood.sh: one keep-alive connection
from a chosen source address (so a flood from another address does not share
its rate limit), sequential GETs for a duration; prints percentiles."""
import http.client
import sys
import time

host, port, path, token, seconds, source = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5]), sys.argv[6]
conn = http.client.HTTPConnection(host, port, source_address=(source, 0), timeout=10)
latencies, statuses = [], {}
end = time.monotonic() + seconds
while time.monotonic() < end:
    start = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    response.read()
    latencies.append((time.perf_counter() - start) * 1000)
    statuses[response.status] = statuses.get(response.status, 0) + 1
latencies.sort()
pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
print(f"valid requests: {len(latencies)} in {seconds:.0f} s, statuses {statuses}, "
      f"p50 {pick(0.50):.2f} ms, p90 {pick(0.90):.2f} ms, p99 {pick(0.99):.2f} ms, max {latencies[-1]:.2f} ms")
