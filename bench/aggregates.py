#!/usr/bin/env python3
"""Aggregates against the list a client would page through instead (D163).

Usage: bench/aggregates.py URL KEY [RUNS]
  URL   a Strata server's root (http://127.0.0.1:8091), serving the demo organisation
  KEY   an API key of a user who reads the accounts (the demo's --admin-key)

Times, over the Web API and as that user: a `$apply` count and sum, a `$apply` grouped by owner,
the same count and sum in FetchXML, and reading every account's revenue in pages of 5,000 (what a
client sums without aggregates). Prints medians and p90s in milliseconds, and the ratio of each
to the paged read.
"""
import json, statistics, sys, time, urllib.parse, urllib.request

url, key = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 20
base = url.rstrip("/") + "/api/data/v9.2/"

def get(path):
    req = urllib.request.Request(base + path if not path.startswith("http") else path,
                                 headers={"Authorization": "Bearer " + key, "Prefer": "odata.maxpagesize=5000"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())

def q(s):
    return urllib.parse.quote(s, safe="")

fetch = '<fetch aggregate="true"><entity name="account"><attribute name="accountid" aggregate="count" alias="n"/><attribute name="annualrevenue" aggregate="sum" alias="s"/></entity></fetch>'

def paged():
    total, n, page = 0, 0, get("accounts?$select=annualrevenue")
    while True:
        for a in page["value"]:
            n += 1
            total += a.get("annualrevenue") or 0
        link = page.get("@odata.nextLink")
        if not link:
            return {"n": n, "s": total}
        page = get(link)

cases = [
    ("$apply count and sum", lambda: get("accounts?$apply=" + q("aggregate($count as n,annualrevenue with sum as s)"))["value"][0]),
    ("$apply grouped by owner", lambda: get("accounts?$apply=" + q("groupby((_ownerid_value),aggregate($count as n))"))["value"]),
    ("FetchXML count and sum", lambda: get("accounts?fetchXml=" + q(fetch))["value"][0]),
    ("every record's revenue, pages of 5,000", paged),
]
results = {}
for name, call in cases:
    call()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = call()
        times.append((time.perf_counter() - t) * 1000)
    results[name] = (statistics.median(times), sorted(times)[int(len(times) * 0.9) - 1], out)
base_ms = results[cases[-1][0]][0]
counted = results[cases[0][0]][2]
paged_out = results[cases[-1][0]][2]
assert counted["n"] == paged_out["n"] and counted["s"] == paged_out["s"], (counted, paged_out)
print(f"{paged_out['n']} accounts read, {runs} runs each")
print(f"{'query':<42} {'median ms':>10} {'p90 ms':>8} {'vs paged':>9}")
for name, _ in cases:
    med, p90, _ = results[name]
    print(f"{name:<42} {med:>10.1f} {p90:>8.1f} {med / base_ms:>9.2f}")
