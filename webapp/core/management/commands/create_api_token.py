"""``manage.py create_api_token USER [--read-only] [--name NAME]``: print a new raw token once."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from webapp.core.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for USER and print the raw key (shown once; only its hash is stored)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--read-only", action="store_true", help="the token may only read")
        parser.add_argument("--name", default="", help="a label for the token")

    def handle(self, *args, **options) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user named {options['username']!r}")
        _token, raw = api_token_create(user=user, name=options["name"], read_only=options["read_only"])
        self.stdout.write(raw)
