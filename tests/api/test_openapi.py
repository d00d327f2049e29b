"""The OpenAPI description (/v1/openapi.json) checked against the live endpoints by schemathesis:
every status code, header and body that comes back must be one the document describes, a
request the document calls invalid must be refused, and the token must be enforced.

The provider here is the simulator (the `simulator` fixture points the studio at it), so no
generated request can spend real money, and the runs are kept small.
"""

from pathlib import Path

import hypothesis
import pytest
import schemathesis

# Imported here, at collection, not lazily by its check deep inside a Hypothesis run: pytest
# rewrites schemathesis' modules (it is a pytest plugin), and CPython 3.11 can fail to compile
# a module that far down the stack ("AST constructor recursion depth mismatch").
import schemathesis.specs.openapi.object_authorization
from hypothesis.configuration import set_hypothesis_home_dir

# Hypothesis keeps caches on disk: under var/ with the studio's other scratch files, not in a
# .hypothesis/ folder at the top of the checkout.
set_hypothesis_home_dir(Path(__file__).resolve().parents[2] / "var" / "hypothesis")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker", "catalog"),
]

STATEFUL_SCENARIOS = 10
# schemathesis.toml, in short. A request that fits the schema may still be refused with 400:
# the studio checks what its web form checks for the chosen model (its durations and sizes,
# whether it takes an image, a prompt unless an image is given; six images in all, across image
# and image[]), which a JSON Schema cannot say. The document describes that 400. Likewise 422:
# generated requests reuse Idempotency-Key values with other bodies, which is refused by design.
CONFIG = """
[generation]
max-examples = 15
database = "none"

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "422", "429"]

[auth.openapi.bearerAuth]
bearer = "{key}"
"""


@pytest.fixture
def api_schema(live_server, alice, token_for, settings):
    # Every generated request must reach the endpoint's own checks, not a limit meant for
    # people: the limits have tests of their own (test_requests.py, test_live.py).
    settings.GATEWAY_REQUESTS_PER_MINUTE = 0
    settings.JOB_SUBMITS_PER_MINUTE = 0
    settings.JOB_ACTIVE_LIMIT = 0
    settings.GATEWAY_WAIT_SECONDS = 60
    # The key as the schema's own security scheme, so schemathesis knows it is real and checks
    # that the same request without it, or with a made-up one, is refused.
    config = CONFIG.replace("{key}", token_for(alice))
    schema = schemathesis.openapi.from_url(
        live_server.url + "/v1/openapi.json",
        config=schemathesis.config.SchemathesisConfig.from_str(config),
    )
    schema.config.update(base_url=live_server.url)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_the_api_answers_as_its_openapi_description_says(case):
    case.call_and_validate()


def test_following_a_generation_to_its_job_and_video_matches_the_description(api_schema):
    """Stateful: make a video (waiting for it or not), then read its job and its video through
    the document's links, so the bodies of live, finished and failed jobs are checked too."""
    api_schema.as_state_machine().run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=4,
            deadline=None,
            # The server is real and keeps what each run made, so a replay cannot repeat a run
            # exactly: report the first failure as it happened, unshrunk.
            phases=[hypothesis.Phase.generate],
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
