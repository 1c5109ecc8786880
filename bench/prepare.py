"""Picks the requests of the load (ids of jobs and users, tokens) from the seeded
data and, for the mix, creates the rows its writes need, one disjoint slice per
variant so that no variant's writes collide with another's.

Run by bench.run after the seed, before the server starts (the bench's Redis db is
flushed afterwards, so rows made here with bulk_create need no cache bump):
``python -m bench.prepare OUT.json [--mix-slices K --mix-per-slice N]``."""
from __future__ import annotations

import argparse
import datetime
import json
import os
import random

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django.setup()

from django.db.models import Count  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from accounts.models import User  # noqa: E402
from jobs.models import Application, Category, Job, SavedJob  # noqa: E402
from payments.models import Payment  # noqa: E402
from ratings.models import Review  # noqa: E402

rnd = random.Random(20261123)


def tokens_for(user_ids) -> dict[int, str]:
    user_ids = list(dict.fromkeys(user_ids))
    have = dict(Token.objects.filter(user_id__in=user_ids).values_list("user_id", "key"))
    missing = [uid for uid in user_ids if uid not in have]
    if missing:
        Token.objects.bulk_create([Token(user_id=uid, key=Token.generate_key()) for uid in missing])
        have = dict(Token.objects.filter(user_id__in=user_ids).values_list("user_id", "key"))
    return have


def read_targets(n: int) -> dict:
    """The ids the read load spreads over: recent jobs (the ones people look at),
    users with reviews, users with payments and users with saved jobs."""
    jobs = list(Job.objects.order_by("-created_at", "-id").values_list("id", flat=True)[:n])
    profiles = list(User.objects.filter(is_active=True).order_by("?").values_list("id", flat=True)[:n])
    reviewed = list(
        Review.objects.values("reviewed_id").annotate(n=Count("id")).order_by("-n").values_list(
            "reviewed_id", flat=True
        )[:n]
    )
    payers = list(
        Payment.objects.values("payer_id").annotate(n=Count("id")).order_by("-n").values_list(
            "payer_id", flat=True
        )[: n // 2]
    )
    recipients = list(
        Payment.objects.values("recipient_id").annotate(n=Count("id")).order_by("-n").values_list(
            "recipient_id", flat=True
        )[: n // 2]
    )
    savers = list(
        SavedJob.objects.values("user_id").annotate(n=Count("id")).order_by("-n").values_list(
            "user_id", flat=True
        )[:n]
    )
    payment_users = list(dict.fromkeys(payers + recipients))
    tokens = tokens_for(payment_users + savers)
    return {
        "jobs": jobs,
        "profiles": profiles,
        "reviewed": reviewed or profiles,
        "payment_users": [[uid, tokens[uid]] for uid in payment_users],
        "saved_users": [[uid, tokens[uid]] for uid in savers],
    }


def _job(client, category, status, start, **extra) -> Job:
    return Job(
        client=client, title=f"Bench shift {rnd.randrange(10**6)}", description="A shift made by the bench.",
        category=category, city="Benchville", rate="25.00", currency="EUR", start_at=start,
        end_at=start + datetime.timedelta(hours=6), status=status, **extra,
    )


def mix_fixtures(slices: int, per_slice: int) -> list[dict]:
    """Rows for the mix's writes, in ``slices`` disjoint slices:
    apply (worker token, open job), accept (owner token, pending application of an
    open job needing one worker: accepting it fills the job), pay and review (both
    sides of a completed job with one accepted worker), edit (owner token, open job)."""
    clients = list(User.objects.filter(role="client", is_active=True).order_by("?")[:200])
    workers = list(User.objects.filter(role="worker", is_active=True).order_by("?")[:400])
    category = Category.objects.order_by("id").first()
    now = timezone.now()
    future = now + datetime.timedelta(days=30)
    past = now - datetime.timedelta(days=30)

    n_apply_jobs = max(10, slices * per_slice // 8)
    apply_jobs = Job.objects.bulk_create(
        [_job(rnd.choice(clients), category, "open", future, workers_needed=50) for _ in range(n_apply_jobs)]
    )
    accept_jobs = Job.objects.bulk_create(
        [_job(rnd.choice(clients), category, "open", future, workers_needed=1, applications_count=1)
         for _ in range(slices * per_slice)]
    )
    accept_apps = Application.objects.bulk_create(
        [Application(job=j, worker=rnd.choice(workers), status="pending", cover_note="bench")
         for j in accept_jobs]
    )
    done_jobs = Job.objects.bulk_create(
        [_job(rnd.choice(clients), category, "completed", past, workers_needed=1, applications_count=1,
              accepted_count=1) for _ in range(slices * per_slice)]
    )
    done_workers = [rnd.choice(workers) for _ in done_jobs]
    Application.objects.bulk_create(
        [Application(job=j, worker=w, status="accepted", cover_note="bench") for j, w in zip(done_jobs, done_workers)]
    )
    tokens = tokens_for([u.pk for u in clients + workers])

    out = []
    for s in range(slices):
        sl = slice(s * per_slice, (s + 1) * per_slice)
        apply_pairs = []
        jobs_of_slice = apply_jobs[s::slices] or apply_jobs
        used = set()
        while len(apply_pairs) < per_slice * 2 and len(used) < len(jobs_of_slice) * len(workers):
            job, worker = rnd.choice(jobs_of_slice), rnd.choice(workers)
            if (job.pk, worker.pk) in used or worker.pk == job.client_id:
                continue
            used.add((job.pk, worker.pk))
            apply_pairs.append({"token": tokens[worker.pk], "job": job.pk})
        reviews = []
        pays = []
        for job, worker in list(zip(done_jobs, done_workers))[sl]:
            reviews.append({"token": tokens[job.client_id], "job": job.pk, "reviewed": worker.pk})
            reviews.append({"token": tokens[worker.pk], "job": job.pk, "reviewed": job.client_id})
            pays.append({"token": tokens[job.client_id], "payer": job.client_id, "job": job.pk,
                         "recipient": worker.pk, "currency": job.currency})
        out.append({
            "apply": apply_pairs,
            "accept": [{"token": tokens[a.job.client_id], "application": a.pk, "job": a.job_id}
                       for a in accept_apps[sl]],
            "pay": pays,
            "review": reviews,
            "edit": [{"token": tokens[j.client_id], "job": j.pk} for j in jobs_of_slice],
        })
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--mix-slices", type=int, default=0)
    parser.add_argument("--mix-per-slice", type=int, default=150)
    args = parser.parse_args()
    data = {"targets": read_targets(args.targets), "counts": {
        "jobs": Job.objects.count(), "users": User.objects.count(),
        "applications": Application.objects.count(), "payments": Payment.objects.count(),
        "reviews": Review.objects.count(), "saved_jobs": SavedJob.objects.count(),
    }}
    if args.mix_slices:
        data["mix"] = mix_fixtures(args.mix_slices, args.mix_per_slice)
        data["counts"]["jobs_after_mix_fixtures"] = Job.objects.count()
    with open(args.out, "w") as f:
        json.dump(data, f)


if __name__ == "__main__":
    main()
