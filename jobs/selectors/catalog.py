"""The model catalog as a person may choose from it, where the job is charged."""

from jobs.models import VideoModel


def catalog_models(*, user, team=None):
    """The models `user` may choose for a job charged to `team` (None: their personal space),
    cheapest first: hidden ones for nobody, staff-only ones for staff, and for a team that staff
    limited to some models, only those."""
    models = VideoModel.objects.exclude(visibility=VideoModel.Visibility.HIDDEN)
    if not user.is_staff:
        models = models.filter(visibility=VideoModel.Visibility.EVERYONE)
    if team is not None and not team.all_models:
        models = models.filter(teams=team)
    return models.order_by("price_max", "id")
