"""Django's Redis cache, with one redis-py client per connection pool instead of one per call.

Django's RedisCacheClient.get_client builds a new redis.Redis for every cache operation. With
redis-py 8 that costs about 0.2 ms of CPU (the client fills its table of response callbacks
anew each time), as much as a whole bare Django view. A session read (cached_db sessions), every
rate-limit count and every log-in throttle check paid it; bench/polling.py measured it as a
quarter of the 2-s status poll's cost. A redis.Redis is thread-safe and holds no connection of its
own (it borrows one from the pool per command), so keeping one per pool changes nothing else.
Django already gives each thread its own cache object (django.core.cache.caches is per thread).
"""

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient


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
