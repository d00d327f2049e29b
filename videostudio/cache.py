"""Django's Redis cache, with one redis-py client per connection pool instead of one per call.

Django's RedisCacheClient.get_client builds a new redis.Redis for every cache operation. With
redis-py 8 that costs about 0.2 ms of CPU (the client fills its table of response callbacks
anew each time), as much as a whole bare Django view. A session read (cached_db sessions), every
rate-limit count and every log-in throttle check paid it; bench/polling.py measured it as a
quarter of the 2-s status poll's cost. A redis.Redis is thread-safe and holds no connection of its
own (it borrows one from the pool per command), so keeping one per pool changes nothing else.
Django already gives each thread its own cache object (django.core.cache.caches is per thread).
"""

import logging
import time

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient


class FallbackRedisCache(RedisCache):
    """The Redis cache, falling back to this process's memory while Redis cannot be reached.

    The cache holds only short-lived counters: submits and API requests per minute
    (jobs/services/limits.py) and failed log-ins (django-axes). While Redis is away they are
    counted in each web process's own memory instead, so the limits still hold, per process
    (a person may get up to one limit's worth per web process until Redis is back), rather than
    every page that counts something answering 500. The limits that guard money do not live
    here: the budget and the cap on active jobs are checked in the database, under a row lock.

    After a failure Redis is left alone for RETRY_SECONDS, so a Redis that times out does not
    cost every request a timeout. What was counted in memory is not copied back: counters
    expire within minutes anyway.
    """

    RETRY_SECONDS = 5.0
    # Django's cache API, each forwarded to Redis and, while it is away, to memory.
    OPERATIONS = (
        "add",
        "get",
        "set",
        "touch",
        "delete",
        "get_many",
        "has_key",
        "incr",
        "set_many",
        "delete_many",
        "clear",
    )

    def __init__(self, server, params):
        super().__init__(server, params)
        self._fallback = LocMemCache(f"fallback-{id(self)}", params)
        self._redis_down_until = 0.0

    def _call(self, name, *args, **kwargs):
        if time.monotonic() >= self._redis_down_until:
            try:
                return getattr(RedisCache, name)(self, *args, **kwargs)
            except (RedisError, OSError) as exc:
                self._redis_down_until = time.monotonic() + self.RETRY_SECONDS
                logger.warning(
                    "cache: Redis unreachable (%s); counting in this process's memory for now",
                    type(exc).__name__,
                )
        return getattr(self._fallback, name)(*args, **kwargs)


def _forwarded(name: str):
    def operation(self, *args, **kwargs):
        return self._call(name, *args, **kwargs)

    operation.__name__ = name
    return operation


for _name in FallbackRedisCache.OPERATIONS:
    setattr(FallbackRedisCache, _name, _forwarded(_name))
