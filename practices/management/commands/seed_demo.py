from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from practices.demo import DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = "Create the demo organization 'demo-dental', one user per role and about 300 realistic patients."

    def handle(self, *args: Any, **options: Any) -> None:
        organization, logins, summary = seed_demo()
        self.stdout.write(
            f"Organization {organization.slug}: feed applied {summary.applied} record(s), "
            f"rejected {summary.rejected}, {len(summary.warnings)} warning(s)."
        )
        self.stdout.write(f"Open {settings.PUBLIC_BASE_URL}/admin/ and log in as:")
        for username, role in logins:
            self.stdout.write(f"  {username:<10} / {DEMO_PASSWORD}   ({role})")
