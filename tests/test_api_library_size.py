"""``GET /api/media`` says what the library takes on the card: per item, in total, and what is free."""

from __future__ import annotations

import io
import shutil
from typing import Any

from flask import Flask

from libloop.index.usage import library_usage
from tests.webapp_fixtures import CSRF, SimServices, add_solid_item, app, device, gif_bytes

__all__ = ["app", "device"]


def test_items_and_totals_report_their_disk_use_and_the_free_space(app: Flask, device: SimServices) -> None:
    add_solid_item(device.library, "red", [(255, 0, 0)])
    client = app.test_client()
    response = client.post(
        "/api/media?wait=true",
        data={"file": [(io.BytesIO(gif_bytes([(255, 0, 0), (0, 0, 255), (0, 255, 0)])), "cat.gif")]},
        headers=CSRF,
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = client.get("/api/media").get_json()
    items, storage = body["items"], body["storage"]
    files = {i.id: device.library.frame_path(i).stat().st_size for i in device.library.items()}
    for item in items:
        assert item["size_bytes"] == files[item["id"]]
        assert item["disk_bytes"] >= item["size_bytes"] > 0
    assert storage["frames_bytes"] == sum(files.values())
    assert storage["total_bytes"] == storage["frames_bytes"] + storage["originals_bytes"]
    free = shutil.disk_usage(device.library.data_dir).free
    assert storage["disk_bytes"] > 0 and abs(storage["free_bytes"] - free) < 64 * 2**20


def test_an_original_shared_by_two_items_counts_once_in_the_total() -> None:
    class Item:
        def __init__(self, item_id: str, size: int, original: str | None, kept: int) -> None:
            self.id, self.size_bytes, self.original, self.original_bytes = item_id, size, original, kept

    usage = library_usage(
        [Item("a", 100, "h1", 1000), Item("b", 50, "h1", 1000), Item("c", 10, None, 0)], None
    )
    assert usage.items == {"a": 1100, "b": 1050, "c": 10}
    assert (usage.frames_bytes, usage.originals_bytes, usage.total_bytes) == (160, 1000, 1160)
    assert usage.free_bytes is None and usage.to_dict()["total_bytes"] == 1160
