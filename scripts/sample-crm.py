#!/usr/bin/env python3
"""Writes samples/crm/: a made-up CRM export (the contract in docs/crm-data.md) for the demo's
six managers (the managers of samples/calls), January to November 2026, so `make demo` has a
funnel, plans and win rates to put beside the sample calls. Deterministic (a fixed seed): run it
again and the files do not change. Names, companies and amounts are invented."""
import csv
import datetime as dt
import os
import random

OUT = os.path.join(os.path.dirname(__file__), "..", "samples", "crm")
rng = random.Random(20260301)

MANAGERS = [
    ("m-sokolov", "Алексей Соколов", "Москва", "sokolov@example.ru", 0.30, 6),
    ("m-kravtsova", "Мария Кравцова", "Москва", "kravtsova@example.ru", 0.42, 4),
    ("m-orlov", "Дмитрий Орлов", "Москва", "orlov@example.ru", 0.22, 12),
    ("m-zaitsev", "Игорь Зайцев", "Москва", "zaitsev@example.ru", 0.35, 8),
    ("m-miller", "Sarah Miller", "New York", "miller@example.com", 0.38, 5),
    ("m-carter", "James Carter", "New York", "carter@example.com", 0.27, 9),
]
STAGES = ["new", "qualified", "meeting", "proposal", "negotiation", "won"]
SOURCES = ["web", "phone", "referral", "event"]
LOST = ["price", "timing", "competitor", "no budget", "no decision maker", "went silent"]
START = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)
END = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)
SPAN = (END - START).total_seconds()


def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def at(frac):
    return START + dt.timedelta(seconds=SPAN * frac)


def working_hours(t):
    return t.replace(hour=rng.randint(8, 18), minute=rng.randint(0, 59), second=0)


def main():
    os.makedirs(OUT, exist_ok=True)
    customers, leads, deals, stages, activities, plans = [], [], [], [], [], []
    for i in range(1, 121):
        segment = rng.choice(["smb", "smb", "mid", "enterprise"])
        customers.append((f"c{i:03}", f"Customer {i:03}", segment))
    lead_n = deal_n = act_n = 0
    for mid, _name, _team, _email, win, response in MANAGERS:
        for _ in range(70):
            lead_n += 1
            created = working_hours(at(rng.random()))
            answered = rng.random() < 0.9
            first = created + dt.timedelta(minutes=rng.expovariate(1 / response)) if answered else None
            mql = created + dt.timedelta(hours=rng.randint(1, 48)) if rng.random() < 0.6 else None
            sql = mql + dt.timedelta(days=rng.randint(1, 5)) if mql and rng.random() < 0.55 else None
            customer = rng.choice(customers)[0]
            leads.append((f"l{lead_n:04}", ts(created), rng.choice(SOURCES), mid,
                          ts(first) if first else "", ts(mql) if mql else "", ts(sql) if sql else "", customer))
            if not sql and rng.random() < 0.7:
                continue
            deal_n += 1
            deal = f"d{deal_n:04}"
            d_created = (sql or created) + dt.timedelta(hours=rng.randint(1, 72))
            # How far it gets: each step passed with the manager's own odds.
            reached = 0
            while reached < 4 and rng.random() < 0.55 + win:
                reached += 1
            t = d_created
            for s in STAGES[: reached + 1]:
                stages.append((deal, s, ts(t)))
                t += dt.timedelta(days=rng.randint(2, 9))
            if t > END:
                status, closed = "open", None
            elif reached == 4 and rng.random() < 0.45 + win:
                status, closed = "won", t
                stages.append((deal, "won", ts(t)))
            elif rng.random() < 0.75:
                status, closed = "lost", t
            elif END - t < dt.timedelta(days=40):
                # Still being worked: only recent deals are open.
                status, closed = "open", None
            else:
                status, closed = "lost", t
            amount = round(rng.lognormvariate(11, 0.6), -2) if rng.random() < 0.9 else ""
            reason = rng.choice(LOST) if status == "lost" and rng.random() < 0.85 else ""
            deals.append((deal, mid, ts(d_created), status, customer, f"l{lead_n:04}",
                          ts(closed) if closed else "", amount, "RUB" if amount != "" else "", reason))
            # Touches along the deal.
            touch = d_created
            for _ in range(rng.randint(2, 9)):
                touch += dt.timedelta(hours=rng.randint(4, 90))
                if touch > (closed or END):
                    break
                act_n += 1
                kind = rng.choices(["call", "email", "meeting", "demo", "proposal", "message"],
                                   [6, 4, 2, 1, 1, 2])[0]
                outcome = rng.choices(["productive", "unproductive", ""], [6, 3, 1])[0]
                duration = rng.randint(60, 1800) if kind in ("call", "meeting", "demo") else ""
                activities.append((f"a{act_n:05}", mid, kind, ts(working_hours(touch)), deal, outcome, duration))
        # Touches outside deals (prospecting).
        for _ in range(160):
            act_n += 1
            kind = rng.choices(["call", "email", "message"], [5, 3, 2])[0]
            activities.append((f"a{act_n:05}", mid, kind, ts(working_hours(at(rng.random()))), "",
                               rng.choices(["productive", "unproductive"], [1, 3])[0],
                               rng.randint(20, 400) if kind == "call" else ""))
        for month in range(1, 13):
            first = dt.date(2026, month, 1)
            last = (dt.date(2026 + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1))
            for metric, target in (("calls", 16), ("meetings", 4), ("deals_won", 2), ("revenue", 120000)):
                plans.append((mid, first.isoformat(), last.isoformat(), metric, target))

    def write(name, header, rows):
        with open(os.path.join(OUT, name), "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)

    write("managers.csv", ["manager_id", "name", "team", "email"], [m[:4] for m in MANAGERS])
    write("customers.csv", ["customer_id", "name", "segment"], customers)
    write("leads.csv", ["lead_id", "created_at", "source", "manager_id", "first_response_at", "mql_at", "sql_at", "customer_id"], leads)
    write("deals.csv", ["deal_id", "manager_id", "created_at", "status", "customer_id", "lead_id", "closed_at", "amount", "currency", "lost_reason"], deals)
    write("deal_stages.csv", ["deal_id", "stage", "entered_at"], stages)
    write("activities.csv", ["activity_id", "manager_id", "type", "at", "deal_id", "outcome", "duration_s"], activities)
    write("plans.csv", ["manager_id", "period_start", "period_end", "metric", "target"], plans)


if __name__ == "__main__":
    main()
