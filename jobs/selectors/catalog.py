"""The model catalog as a person may choose from it."""

from jobs.models import VideoModel


def catalog_models(*, user):
    """The models `user` may choose, cheapest first: hidden ones for nobody, staff-only ones for
    staff."""
    models = VideoModel.objects.exclude(visibility=VideoModel.Visibility.HIDDEN)
    if not user.is_staff:
        models = models.filter(visibility=VideoModel.Visibility.EVERYONE)
    return models.order_by("price_max", "id")
