"""The simulator's model table, in the provider's `/v1/models` shape, and its price rules.

Ids, durations and pricing kinds are the provider's; the exact prices, sizes and which stand-ins
take an input image are chosen so that every pricing kind and every validation path can be
exercised. Every entry says `"simulated": true` and its model_name ends in " (simulated)".
Money is kept in integer units of 1e-4 USD, as the provider's database does.
"""

import hashlib
from decimal import Decimal

UNITS_PER_USD = 10_000


def usd_to_units(value) -> int:
    return int((Decimal(str(value)) * UNITS_PER_USD).to_integral_value())


def units_to_usd(units: int) -> Decimal:
    return (Decimal(units) / UNITS_PER_USD).quantize(Decimal("0.0001"))


def _video(model_id, *, pricing, release_date, seconds, sizes, edit, provider="simulator"):
    return {
        "id": model_id,
        "providers": [
            {"id": provider, "model_name": f"{model_id} (simulated)", "pricing": pricing}
        ],
        "release_date": release_date,
        "seconds": seconds,
        "default_seconds": seconds[0],
        # `auto` renders the first size in this list.
        "sizes": sizes,
        "output": ["video"],
        "supported_params": {"edit": edit, "mask": False, "quality": False},
        "simulated": True,
    }


MODELS = {
    m["id"]: m
    for m in [
        _video(
            "ir/test-video",
            pricing={"type": "fixed", "value": 0},
            release_date="2025-05-04",
            seconds=[5],
            sizes=["640x360", "1280x720", "720x1280"],
            edit=True,
            provider="test",
        ),
        _video(
            "kling/kling-2.1-standard",
            pricing={"type": "calculated", "range": {"min": 0.18, "average": 0.30, "max": 0.50}},
            release_date="2025-06-24",
            seconds=[5, 10],
            sizes=["1280x720", "720x1280", "960x960"],
            edit=True,
        ),
        _video(
            "google/veo-3.1-fast",
            pricing={"type": "fixed", "value": 0.60},
            release_date="2025-10-15",
            seconds=[4, 6, 8],
            sizes=["1280x720", "720x1280"],
            edit=True,
        ),
        _video(
            "openai/sora-2",
            pricing={
                "type": "post_generation",
                "range": {"min": 0.40, "average": 0.80, "max": 1.20},
            },
            release_date="2025-09-30",
            seconds=[4, 8, 12],
            sizes=["1280x720", "720x1280"],
            edit=False,
        ),
        _video(
            "minimax/hailuo-2.3",
            pricing={
                "type": "post_generation",
                "range": {"min": 0.28, "average": 0.28, "max": 0.49},
            },
            release_date="2025-10-28",
            seconds=[6],
            sizes=["1366x768", "1920x1080"],
            edit=False,
        ),
        {
            "id": "openai/gpt-image-1",
            "providers": [
                {
                    "id": "openai",
                    "model_name": "openai/gpt-image-1 (simulated)",
                    "pricing": {
                        "type": "calculated",
                        "range": {"min": 0.011, "average": 0.167, "max": 0.25},
                    },
                }
            ],
            "release_date": "2025-04-23",
            "sizes": ["1024x1024", "1536x1024", "1024x1536"],
            "output": ["image"],
            "supported_params": {"edit": True, "mask": True, "quality": True},
            "simulated": True,
        },
    ]
}


def pricing_of(model: dict) -> dict:
    return model["providers"][0]["pricing"]


def max_price_units(model: dict) -> int:
    """What the provider reserves before it generates: the top of the price range."""
    pricing = pricing_of(model)
    if pricing["type"] == "fixed":
        return usd_to_units(pricing["value"])
    return usd_to_units(pricing["range"]["max"])


def average_price(model: dict) -> float:
    pricing = pricing_of(model)
    return pricing["value"] if pricing["type"] == "fixed" else pricing["range"]["average"]


def is_free(model: dict) -> bool:
    return max_price_units(model) == 0


def price_units(model: dict, *, seconds: float, width: int, height: int, prompt: str) -> int:
    """The settled price of one generation, always within the model's range.

    calculated: grows with the share of the longest duration and the largest listed frame.
    post_generation: the provider learns the price afterwards; here a hash of the prompt picks
    a deterministic point in the range so tests can predict it.
    """
    pricing = pricing_of(model)
    if pricing["type"] == "fixed":
        return usd_to_units(pricing["value"])
    low, high = usd_to_units(pricing["range"]["min"]), usd_to_units(pricing["range"]["max"])
    if pricing["type"] == "calculated":
        largest = max(_pixels(size) for size in model["sizes"])
        share = min(1.0, seconds / max(model["seconds"])) * min(1.0, width * height / largest)
    else:
        share = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big") / 2**32
    return low + round((high - low) * share)


def _pixels(size: str) -> int:
    width, height = size.split("x")
    return int(width) * int(height)


def listing(query: dict[str, str]) -> dict:
    """GET /v1/models with the provider's filters: type, provider, free, name, sort, limit."""
    models = list(MODELS.values())
    if kind := query.get("type"):
        models = [m for m in models if kind in m["output"]]
    if provider := query.get("provider", "").lower():
        models = [
            m
            for m in models
            if provider in m["id"].split("/")[0].lower()
            or any(provider in p["id"].lower() for p in m["providers"])
        ]
    if (free := query.get("free")) in ("true", "false"):
        models = [m for m in models if is_free(m) == (free == "true")]
    if name := query.get("name", "").lower():
        models = [m for m in models if name in m["id"].lower()]
    sort = query.get("sort")
    if sort == "name":
        models.sort(key=lambda m: m["id"].lower())
    elif sort == "provider":
        models.sort(key=lambda m: (m["id"].split("/")[0].lower(), m["id"].lower()))
    elif sort == "price":
        models.sort(key=average_price)
    elif sort == "date":
        models.sort(key=lambda m: m["release_date"], reverse=True)
    if (limit := query.get("limit", "")).isdigit():
        models = models[: int(limit)]
    return {m["id"]: m for m in models}
