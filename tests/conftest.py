"""Shared test configuration: hypothesis profiles (`ci` is selected by HYPOTHESIS_PROFILE)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from tests.real_corpus import CORPUS_VERSION, RealCorpus, corpus_root

settings.register_profile("dev", deadline=None, max_examples=60)
settings.register_profile(
    "ci", deadline=None, max_examples=100, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


@pytest.fixture(scope="session")
def real_corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> RealCorpus:
    """The realistic media corpus (``tests/real_corpus.py``), built on demand, kept across runs.

    Files live under ``.pytest_cache/`` keyed by ``CORPUS_VERSION`` (the 30 s 1080p encode runs
    once per checkout); with the cache plugin off or ``LOOP_CORPUS_CACHE=0``, in this session's
    temporary directory.
    """
    cache = getattr(request.config, "cache", None)
    cached = cache.mkdir(f"loop-real-corpus-v{CORPUS_VERSION}") if cache is not None else None
    return RealCorpus(corpus_root(cached, tmp_path_factory.mktemp("real-corpus")))
