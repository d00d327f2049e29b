from django.core.management.base import BaseCommand

from jobs import services
from jobs.selectors.storage import jobs_unmeasured


class Command(BaseCommand):
    help = (
        "Measure the files of videos stored before the studio recorded sizes (run once after "
        "upgrading), so storage figures and team quotas count them. Safe to run again, or "
        "while the studio runs."
    )

    def handle(self, *args, **options):
        measured, failed = 0, 0
        for job in jobs_unmeasured().iterator(chunk_size=500):
            try:
                measured += services.job_storage_measure(job=job)
            except Exception as exc:  # the storage's own errors; the job stays unmeasured
                failed += 1
                self.stderr.write(f"job {job.pk}: not measured ({type(exc).__name__}: {exc})")
        left = jobs_unmeasured().count()
        self.stdout.write(f"Measured {measured} jobs.")
        if failed or left:
            self.stdout.write(f"{left} still unmeasured: run the command again.")
