#!/usr/bin/env python3
"""The nightly without Runway: the baseline `runway run` is held against.

The same three passes as the embedded nightly plan (host/nightly.toml) and
its agents (plugins/import-applications, compliance-check,
grant-calculator), written plainly in Python over SQLite, with no sandbox
and no audit trail:
1. import: 40,000 synthetic applications (the importer's splitmix64
   generator, same seed, same records) inserted as JSON under app/NNNNNN
   in one transaction;
2. compliance: every app/ record read, checked against the rules, and a
   compliance/ verdict written for each, in one transaction;
3. awards: every compliance/ verdict read; for each that passed, its
   application read and an award/ record written, in one transaction.
The database is like Runway's: one table keyed (dataset, key), WAL,
`synchronous = FULL`, a fresh file per run.

Usage: python3 tests/benches/nightly.py [DATA_DIR]   (default: a temp dir)
Compare: runway run  (the embedded nightly, fresh data root, same machine).
"""

import json
import os
import sqlite3
import sys
import tempfile

COUNT, SEED, DATASET = 40000, 20240316, "fafsa_2024_03_16"
MASK = (1 << 64) - 1

FIRST = ["Ada", "Ben", "Carla", "Dev", "Elena", "Farid", "Grace", "Hiro", "Imani", "Jon",
         "Kemi", "Luis", "Mei", "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sam", "Tariq",
         "Uma", "Vik", "Wren", "Yusuf", "Zoe"]
LAST = ["Abbott", "Baker", "Chen", "Diaz", "Eze", "Fischer", "Garcia", "Haddad", "Ito",
        "Jones", "Kowalski", "Lopez", "Mensah", "Nguyen", "Okafor", "Patel", "Quist", "Rossi",
        "Singh", "Tanaka", "Usman", "Varga", "Walker", "Xu", "Young"]
STATES = ["AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL",
          "IN", "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE",
          "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD",
          "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY"]


class SplitMix64:
    def __init__(self, seed):
        self.s = seed

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n):
        return self.next() % n

    def range(self, lo, hi):
        return lo + self.below(hi - lo + 1)

    def unit(self):
        return (self.next() >> 11) / float(1 << 53)

    def pick(self, items):
        return items[self.below(len(items))]


def application(rng, id_):
    name = f"{rng.pick(FIRST)} {rng.pick(LAST)}"
    household = rng.range(1, 8)
    dependents = household if rng.below(50) == 0 else rng.range(0, household - 1)
    income = 0 if rng.below(10) == 0 else round(1000.0 * 250.0 ** rng.unit())
    c = rng.below(100)
    citizenship = "citizen" if c < 85 else "eligible_noncitizen" if c < 95 else "other"
    return {"id": id_, "name": name, "state": rng.pick(STATES), "age": rng.range(15, 64),
            "household_size": household, "dependents": dependents, "income": income,
            "enrolled_credits": rng.range(0, 18), "citizenship": citizenship}


def violations(id_, a):
    r = []
    if a["citizenship"] not in ("citizen", "eligible_noncitizen"):
        r.append(f"citizenship {a['citizenship']!r} is not eligible")
    if a["enrolled_credits"] < 6:
        r.append(f"enrolled in {a['enrolled_credits']} credits, fewer than 6")
    if a["enrolled_credits"] > 24:
        r.append(f"enrolled in {a['enrolled_credits']} credits, more than 24")
    if a["age"] < 16:
        r.append(f"age {a['age']} is under 16")
    if a["income"] < 0:
        r.append(f"income {a['income']} is negative")
    if a["household_size"] < 1:
        r.append(f"household size {a['household_size']} is below 1")
    if a["dependents"] < 0 or a["dependents"] >= a["household_size"]:
        r.append(f"{a['dependents']} dependents do not fit a household of {a['household_size']}")
    s = a["state"]
    if len(s) != 2 or not (s.isascii() and s.isupper() and s.isalpha()):
        r.append(f"state {s!r} is not a two-letter code")
    if a["id"] != id_:
        r.append(f"record id {a['id']!r} does not match its key")
    return r


def amount(a):
    allowance = 15000 + 5500 * max(a["household_size"] - 1, 0)
    contribution = max(a["income"] - allowance, 0) * 22 // 100
    full = max(7395 - contribution, 0)
    prorated = full * min(a["enrolled_credits"], 12) // 12
    return 0 if prorated < 750 else prorated


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
    path = os.path.join(root, "nightly.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE records (dataset TEXT NOT NULL, key TEXT NOT NULL, "
               "value BLOB NOT NULL, PRIMARY KEY (dataset, key)) WITHOUT ROWID")
    put = ("INSERT INTO records (dataset, key, value) VALUES (?, ?, ?) "
           "ON CONFLICT (dataset, key) DO UPDATE SET value = excluded.value")
    scan = "SELECT key, value FROM records WHERE dataset = ? AND key >= ? AND key < ? ORDER BY key"
    get = "SELECT value FROM records WHERE dataset = ? AND key = ?"

    # 1. import
    rng, width = SplitMix64(SEED), max(len(str(COUNT)), 6)
    db.execute("BEGIN")
    for n in range(1, COUNT + 1):
        a = application(rng, f"{n:0{width}d}")
        db.execute(put, (DATASET, f"app/{a['id']}", json.dumps(a).encode()))
    db.execute("COMMIT")

    # 2. compliance
    db.execute("BEGIN")
    passed = 0
    for key, value in db.execute(scan, (DATASET, "app/", "app0")).fetchall():
        id_ = key[4:]
        reasons = violations(id_, json.loads(value))
        passed += not reasons
        verdict = {"id": id_, "passed": not reasons, "reasons": reasons}
        db.execute(put, (DATASET, f"compliance/{id_}", json.dumps(verdict).encode()))
    db.execute("COMMIT")

    # 3. awards
    db.execute("BEGIN")
    awarded = total = 0
    for key, value in db.execute(scan, (DATASET, "compliance/", "compliance0")).fetchall():
        if not json.loads(value)["passed"]:
            continue
        id_ = key[len("compliance/"):]
        (app,) = db.execute(get, (DATASET, f"app/{id_}")).fetchone()
        award = {"id": id_, "amount": amount(json.loads(app))}
        awarded += award["amount"] > 0
        total += award["amount"]
        db.execute(put, (DATASET, f"award/{id_}", json.dumps(award).encode()))
    db.execute("COMMIT")
    db.close()
    print(f"imported {COUNT}, passed {passed}, awarded {awarded}, ${total} in all")


if __name__ == "__main__":
    main()
