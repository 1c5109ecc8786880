"""What the admin's pages post, for tests that drive them."""


def job_form(job, **changes):
    """The POST of the job change form as the page renders it, with ``changes``."""
    data = {
        "title": job.title, "description": job.description, "category": job.category_id,
        "city": job.city, "rate": str(job.rate), "currency": job.currency, "workers_needed": job.workers_needed,
        "start_at_0": job.start_at.strftime("%Y-%m-%d"), "start_at_1": job.start_at.strftime("%H:%M:%S"),
        "end_at_0": job.end_at.strftime("%Y-%m-%d"), "end_at_1": job.end_at.strftime("%H:%M:%S"),
        "applications-TOTAL_FORMS": "0", "applications-INITIAL_FORMS": "0",
        "applications-MIN_NUM_FORMS": "0", "applications-MAX_NUM_FORMS": "0",
    }
    data.update(changes)
    return data
