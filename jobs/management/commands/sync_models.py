from django.core.management.base import BaseCommand, CommandError

from jobs import imagerouter, services


class Command(BaseCommand):
    help = "Fetch the provider's video models into the studio's catalog."

    def handle(self, *args, **options):
        try:
            count = services.catalog_sync()
        except imagerouter.ImageRouterError as exc:
            raise CommandError(f"Could not sync the model catalog: {exc.message}") from None
        self.stdout.write(f"Synced {count} video models from {imagerouter.get_client().base_url}.")
