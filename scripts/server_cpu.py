"""CPU an ingot-server process burns over a window, idle or at a fixed request rate.

    python3 scripts/server_cpu.py PID PORT MODEL RATE SECONDS BODY

RATE 0 measures idle. After 20 warm-up requests and a second's pause, it reads the process's
utime + stime from /proc/PID/stat, sends RATE requests per second for SECONDS on one keep-alive
connection (or sleeps), reads them again and prints the share of one core used
(docs/benchmarks.md, "Idle CPU of a loaded server").
"""

import http.client
import sys
import time


def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / 100.0  # clock ticks (100 Hz) -> s


def run(pid, port, model, rate, seconds, body):
    conn = http.client.HTTPConnection("127.0.0.1", port)

    def req():
        conn.request(
            "POST", f"/v1/models/{model}/predict", body, {"content-type": "application/json"}
        )
        r = conn.getresponse()
        r.read()
        assert r.status == 200, r.status

    for _ in range(20):
        req()
    time.sleep(1.0)
    c0, t0 = cpu(pid), time.time()
    n = 0
    if rate > 0:
        nxt = t0
        while time.time() - t0 < seconds:
            req()
            n += 1
            nxt += 1.0 / rate
            d = nxt - time.time()
            if d > 0:
                time.sleep(d)
    else:
        time.sleep(seconds)
    c1, t1 = cpu(pid), time.time()
    return n / (t1 - t0), (c1 - c0) / (t1 - t0)


pid, port, model, rate, seconds = (
    int(sys.argv[1]),
    int(sys.argv[2]),
    sys.argv[3],
    float(sys.argv[4]),
    float(sys.argv[5]),
)
body = sys.argv[6]
rps, cores = run(pid, port, model, rate, seconds, body)
print(f"{model} rate {rps:.1f} req/s: server CPU {cores * 100:.2f} % of a core")
